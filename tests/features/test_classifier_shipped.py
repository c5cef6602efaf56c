"""The shipped per-dataset classifiers: fixed bytes, used instead of training, and features
and scores that are the same on every x86 CPU."""

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.data import Split, load_dataset
from bench.errors import UserError
from bench.features import classifier as clf_mod
from bench.features.classifier import (
    ACCURACY_FLOOR,
    SHIPPED_DIR,
    build_net,
    load_classifier,
    measure_accuracy,
    shipped_manifest,
)
from bench.metrics.fd import frechet_distance
from bench.metrics.kid import kid
from bench.metrics.prdc import prdc_metrics

DATA = Path(__file__).resolve().parents[1] / "fixtures"
ROOT = Path(__file__).resolve().parents[2]

# The bytes every machine must load; a retrained classifier changes these on purpose only.
SHIPPED_SHA256 = {
    "fashion-mnist": "fd0e341f7d2d13b3a6ce7efe390f2716b9254b21acb4d3f97de673322ace7776",
    "digits": "a1541f9857318ee430ad0859a3de1007c67876093ff8d4db38ea2f4e0205c596",
    "mnist5k": "61933a7096ccb0154b9226950da57be4989cb7f71c27d84ad6766c97f82f41fb",
    "shapes": "ec6c04410b175c842e4adcd4e27ba0c6aec144c722f680f889b92460d21b6088",
    "animal-mnist": "aa9ce25637c647d1f0f29a568adf3b9f1f36babeee562ddc05d7e90f501c1bd2",
}


@pytest.mark.parametrize("name", sorted(SHIPPED_SHA256))
def test_shipped_file_has_its_pinned_sha256_and_meets_the_accuracy_floor(name):
    entry = shipped_manifest()[name]
    blob = (SHIPPED_DIR / entry["file"]).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == SHIPPED_SHA256[name] == entry["sha256"]
    assert entry["bytes"] == len(blob)
    assert entry["test_accuracy"] >= ACCURACY_FLOOR[name]
    # Plain tensors only: loads with weights_only=True, float32 throughout.
    state = torch.load(SHIPPED_DIR / entry["file"], weights_only=True)
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float32}


def test_every_shipped_classifier_is_pinned_by_a_test():
    assert set(shipped_manifest()) == set(SHIPPED_SHA256)


def _no_training(data, device, seed=0):
    raise AssertionError(f"trained a classifier for {data.name}")


@pytest.mark.parametrize("name", sorted(SHIPPED_SHA256))
def test_builtin_data_loads_the_shipped_classifier_without_training(name, monkeypatch):
    monkeypatch.setattr(clf_mod, "train_classifier", _no_training)
    try:
        data = load_dataset(name)
    except UserError as e:  # fashion-mnist needs the Debian package or torchvision files
        pytest.skip(reason=str(e))
    clf = load_classifier(data)
    entry = shipped_manifest()[name]
    assert clf.source == "shipped"
    assert clf.weights_sha256 == SHIPPED_SHA256[name]
    assert clf.test_accuracy == entry["test_accuracy"]
    # The recorded accuracy is what the shipped weights score here, image for image.
    assert measure_accuracy(clf.net, data, torch.device("cpu")) == entry["test_accuracy"]


def test_stacked_digits_use_the_shipped_base_classifier(monkeypatch):
    monkeypatch.setattr(clf_mod, "train_classifier", _no_training)
    clf = load_classifier(load_dataset("stacked:digits"))
    assert clf.source == "shipped" and clf.weights_sha256 == SHIPPED_SHA256["digits"]


def test_a_tampered_shipped_file_is_refused(tmp_path, monkeypatch):
    entry = shipped_manifest()["digits"]
    blob = bytearray((SHIPPED_DIR / entry["file"]).read_bytes())
    blob[-100] ^= 1
    (tmp_path / entry["file"]).write_bytes(bytes(blob))
    monkeypatch.setattr(clf_mod, "SHIPPED_DIR", tmp_path)
    with pytest.raises(UserError, match="does not match its recorded sha256"):
        load_classifier(load_dataset("digits"))


def _fake_training(data, device, seed=0):
    torch.manual_seed(seed)
    return {"state": build_net(data).state_dict(), "test_accuracy": 0.5}


def test_data_without_a_shipped_classifier_trains_one_here(monkeypatch):
    monkeypatch.setattr(clf_mod, "train_classifier", _fake_training)
    digits = load_dataset("digits")
    own = replace(digits, name="my-digits", content_hash="0123456789abcdef")
    clf = load_classifier(own)
    assert clf.source == "trained-here" and clf.test_accuracy == 0.5
    assert clf.weights_sha256 != SHIPPED_SHA256["digits"]


def test_changed_data_under_a_shipped_name_trains_one_here_and_warns(monkeypatch):
    monkeypatch.setattr(clf_mod, "train_classifier", _fake_training)
    digits = load_dataset("digits")
    flipped = Split(255 - digits.train.x, digits.train.y)
    other = replace(digits, train=flipped, content_hash="feedfacefeedface")
    with pytest.warns(UserWarning, match="training one here"):
        clf = load_classifier(other)
    assert clf.source == "trained-here"


def _samples() -> torch.Tensor:
    with np.load(DATA / "digits_samples.npz") as npz:
        return torch.from_numpy(npz["images"])


FEATURES_SCRIPT = """
import sys, numpy as np, torch
from bench.data import load_dataset
from bench.features.classifier import load_classifier
x = torch.from_numpy(np.load(sys.argv[1])["images"])
np.save(sys.argv[2], load_classifier(load_dataset("digits")).features(x))
print(torch.backends.cpu.get_cpu_capability())
"""


def test_features_are_bitwise_the_same_without_simd_kernels(tmp_path):
    """Another x86 CPU picks other float32 kernels (AVX-512, AVX2, none); here the
    subprocess is held to the plain ones, which differ from the vector kernels in the last
    bits of float32 convolutions. The features must not."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
    }
    out = tmp_path / "feats.npy"
    run = subprocess.run(
        [sys.executable, "-c", FEATURES_SCRIPT, str(DATA / "digits_samples.npz"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "DEFAULT"
    here = load_classifier(load_dataset("digits")).features(_samples())
    assert np.array_equal(np.load(out), here)


def test_committed_samples_score_the_committed_numbers():
    """Scores of a fixed sample set with the shipped classifier, against numbers committed
    beside it (computed by pytorch-fid, prdc and a textbook MMD: make_digits_samples.py).
    They hold on any machine because the extractor and its inputs are fixed."""
    expected = json.loads((DATA / "digits_samples_scores.json").read_text())
    data = load_dataset("digits")
    assert data.content_hash == expected["dataset_content_hash"]
    clf = load_classifier(data)
    assert clf.weights_sha256 == expected["classifier_sha256"]
    fake, train = clf.features(_samples()), clf.features(data.train.x)
    n = len(fake)
    real = train[np.sort(np.random.default_rng(0).choice(len(train), n, replace=False))]
    kid_mean, kid_std = kid(fake, train)
    m = prdc_metrics(real, fake, k_pr=3, k_dc=5)
    got = {
        f"fd_classifier_n{n}_train": frechet_distance(fake, train),
        f"kid_classifier_n{n}": kid_mean,
        f"kid_classifier_n{n}_std": kid_std,
        "precision_classifier_k3": m["precision"],
        "recall_classifier_k3": m["recall"],
        "density_classifier_k5": m["density"],
        "coverage_classifier_k5": m["coverage"],
    }
    for key, value in got.items():
        assert value == pytest.approx(expected[key], rel=1e-5, abs=0), key
