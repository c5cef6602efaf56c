"""Inception pool3 throughput: bench.features.inception against pytorch-fid's InceptionV3.

Run with `pytest tests/benchmarks/test_bench_inception.py --benchmark-only -p no:cacheprovider
-s`. Same weights, same batch, same legacy preprocessing (bilinear resize inside the timed
call for both). pytorch-fid is timed in each round's setup, so both see the same load on
a shared CPU; the extra_info (and the printed line) holds both rates, their ratio (target
>= 1.5x on a CPU) and the largest feature difference (must be < 1e-4).
"""

import statistics
import time
from unittest import mock

import numpy as np
import pytest
import torch
from pytorch_fid import inception as pfi

from bench.features import inception as inc

BATCH = 32
ROUNDS = 3


@pytest.fixture(autouse=True, scope="module")
def no_hub_weights(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch-home-empty"))
        yield


@pytest.fixture(scope="module")
def pytorch_fid_model():
    inc.load_inception("cpu")  # converts and caches the weights
    state = torch.load(inc.converted_weights_path(), weights_only=True)
    with mock.patch.object(pfi, "load_state_dict_from_url", return_value=state):
        return pfi.InceptionV3([3]).eval()


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)], ids=["gray28", "rgb32"])
def test_inception_throughput(benchmark, pytorch_fid_model, channels, size):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (BATCH, channels, size, size), dtype=torch.uint8, generator=g)
    # pytorch-fid's DataLoader hands its model RGB floats in [0, 1]: made outside the timing.
    peer_input = images.float().div(255).expand(-1, 3, -1, -1).contiguous()
    peer_seconds, peer_out = [], []

    def time_pytorch_fid():
        start = time.perf_counter()
        with torch.no_grad():
            peer_out[:] = [pytorch_fid_model(peer_input)[0].flatten(1).numpy()]
        peer_seconds.append(time.perf_counter() - start)

    def ours():
        return inc.inception_features(images, mode="legacy", batch_size=BATCH, device="cpu")

    feats = benchmark.pedantic(ours, setup=time_pytorch_fid, rounds=ROUNDS, warmup_rounds=1)
    diff = float(np.abs(feats - peer_out[0]).max())
    assert diff < 1e-4
    if benchmark.disabled:  # --benchmark-disable: one plain run, no timings
        return
    ours_rate = BATCH / benchmark.stats.stats.median
    peer_rate = BATCH / statistics.median(peer_seconds[1:])  # the first ran with the warm-up
    benchmark.extra_info.update(
        batch=BATCH,
        img_s=round(ours_rate, 2),
        pytorch_fid_img_s=round(peer_rate, 2),
        speedup=round(ours_rate / peer_rate, 2),
        max_abs_diff=diff,
    )
    print(f"\n{benchmark.extra_info}")
