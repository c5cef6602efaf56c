"""Data-parallel evaluation: 2 gloo processes on CPU give the metrics of one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, TESTS

from bench.cache import Cache, hash_key
from bench.data import load_dataset
from bench.distributed import gather_rows, sample_data_parallel, sample_shard, shard
from bench.features.classifier import RECIPE, SmallCNN, to_input

METRICS = "fd,kid,prdc,memorization"


@pytest.mark.parametrize("world", [1, 2, 3, 7])
@pytest.mark.parametrize("n", [0, 1, 5, 359, 1000])
def test_shards_cover_every_row_once_in_order(n, world):
    blocks = [shard(n, r, world) for r in range(world)]
    rows = [i for b in blocks for i in range(n)[b]]
    assert rows == list(range(n))
    sizes = [len(range(n)[b]) for b in blocks]
    assert max(sizes) - min(sizes) <= 1


def test_without_a_process_group_gather_is_the_identity():
    t = torch.arange(6.0).reshape(3, 2)
    assert gather_rows(t) is t
    with pytest.raises(ValueError):
        shard(10, 2, 2)


class CountingModel:
    """Samples depend on the generator only; remembers the sizes it was asked for."""

    def __init__(self):
        self.calls = []

    def sample(self, n, *, generator, batch_size):
        self.calls.append(n)
        return torch.randint(0, 256, (n, 1, 2, 2), generator=generator, dtype=torch.uint8)


@pytest.mark.parametrize("world", [2, 3, 5])
def test_sample_index_seeding_gives_the_same_set_for_any_number_of_ranks(world):
    one = sample_data_parallel(CountingModel(), 103, seed=4, chunk=10)
    parts = [
        sample_shard(CountingModel(), 103, seed=4, chunk=10, rank=r, world=world)
        for r in range(world)
    ]
    assert torch.equal(torch.cat([p for p in parts if p is not None]), one)
    assert len(one) == 103
    other_seed = sample_data_parallel(CountingModel(), 103, seed=5, chunk=10)
    assert not torch.equal(one, other_seed)


class ConditionalCountingModel:
    """Pixel 0 holds the asked label, the rest depends on the generator."""

    num_classes = 10

    def sample(self, n, *, labels, generator, batch_size):
        x = torch.randint(0, 256, (n, 1, 2, 2), generator=generator, dtype=torch.uint8)
        x[:, 0, 0, 0] = labels.to(torch.uint8)
        return x


@pytest.mark.parametrize("world", [2, 3])
def test_conditional_samples_are_of_their_asked_class_for_any_number_of_ranks(world):
    labels = torch.arange(53) % 10
    one = sample_data_parallel(ConditionalCountingModel(), 53, seed=4, chunk=10, labels=labels)
    assert torch.equal(one[:, 0, 0, 0].long(), labels)
    parts = [
        sample_shard(
            ConditionalCountingModel(), 53, seed=4, chunk=10, rank=r, world=world, labels=labels
        )
        for r in range(world)
    ]
    assert torch.equal(torch.cat([p for p in parts if p is not None]), one)
    with pytest.raises(ValueError, match="52 labels for 53 samples"):
        sample_data_parallel(ConditionalCountingModel(), 53, seed=4, chunk=10, labels=labels[:52])


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """The digits test split as a samples file (standard strides, as np.load gives)."""
    tmp = tmp_path_factory.mktemp("dp")
    np.savez(tmp / "test.npz", load_dataset("digits").test.x.numpy())
    return tmp / "test.npz"


def seed_classifier(cache_dir):
    """Put a classifier into a fresh cache so no test trains one: seeded random weights
    with batch-norm statistics from the training split (features that spread out like
    a trained network's; the comparison only needs the same network on every rank)."""
    d = load_dataset("digits")
    torch.manual_seed(0)
    net = SmallCNN(d.shape[0], d.num_classes, RECIPE["width"], RECIPE["feature_dim"])
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # a plain average over the one calibration batch
    net.train()
    with torch.no_grad():
        net(to_input(d.train.x))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    Cache(cache_dir).save(
        "classifier",
        hash_key("classifier", d.content_hash, RECIPE),
        {"state": state, "test_accuracy": 0.0},
    )


def eval_json(samples, cache_dir, launch=("-m", "bench.cli"), extra=()):
    """`python LAUNCH eval ... --json` on a fresh reference-feature cache (so the reference
    passes are split across the ranks too) holding the seeded classifier; one thread per
    process, as torchrun sets it."""
    seed_classifier(cache_dir)
    env = {
        **os.environ,
        "PYTHONPATH": str(TESTS),
        "GENBENCH_CACHE": str(cache_dir),
        "GLOO_SOCKET_IFNAME": "lo",
        "OMP_NUM_THREADS": "1",
    }
    args = ["eval", "--samples", str(samples), "--dataset", "digits", "--metrics", METRICS]
    res = subprocess.run(
        [sys.executable, *launch, *args, "--device", "cpu", "--json", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def one_process(samples, tmp_path_factory):
    out = eval_json(samples, tmp_path_factory.mktemp("cache1"))
    assert out["features"] == "classifier" and "data_parallel_ranks" not in out
    assert set(out["metrics"]) >= {"fd_classifier_n359_train", "ct_classifier", "authpct_pixels"}
    return out


def test_nproc_2_gloo_gives_the_metrics_of_one_process(samples, one_process, tmp_path):
    two = eval_json(samples, tmp_path / "cache", extra=("--nproc", "2"))
    assert two["data_parallel_ranks"] == 2
    assert two["classifier_weights_sha256"] == one_process["classifier_weights_sha256"]
    # same features bit for bit, same single-process metric code: the same numbers
    assert two["metrics"] == pytest.approx(one_process["metrics"], rel=1e-9, abs=1e-12)


def test_torchrun_2_ranks_gives_the_metrics_of_one_process(samples, one_process, tmp_path):
    launch = (
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        "-m",
        "bench.cli",
    )
    two = eval_json(samples, tmp_path / "cache", launch)  # rank 0 alone prints: one JSON
    assert two["data_parallel_ranks"] == 2
    assert two["metrics"] == pytest.approx(one_process["metrics"], rel=1e-9, abs=1e-12)
