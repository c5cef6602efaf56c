"""DINOv2 ViT-S/14 feature throughput on the CPU: bench.features.dinov2 against torch-fidelity's
FeatureExtractorDinoV2 on the same network.

Run with `pytest tests/benchmarks/test_bench_dinov2.py --benchmark-only -p no:cacheprovider -s`.
Random weights in Meta's checkpoint layout go through load_dinov2; torch-fidelity gets the same
timm network through a patched torch.hub.load. Both take uint8 images and resize inside the timed
call (genbench: dgm-eval's PIL bicubic; torch-fidelity: its bilinear), so their features agree
only at 224 x 224, where the largest difference must be < 1e-4. torch-fidelity is timed in each
round's setup so both see the same load; extra_info holds both rates and their ratio (target:
genbench at least as fast).
"""

import os
import statistics
import time
from unittest import mock

import numpy as np
import pytest
import torch
from torch_fidelity.feature_extractor_dinov2 import FeatureExtractorDinoV2

from bench.features import dinov2

BATCH = 16
ROUNDS = int(os.environ.get("GENBENCH_BENCH_ROUNDS", "7"))  # medians of interleaved rounds


@pytest.fixture(scope="module")
def extractor(tmp_path_factory):
    template = dinov2.official_template(dinov2.build_model("vits14"))
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(v.shape, generator=g) * 0.05 for k, v in template.items()}
    path = tmp_path_factory.mktemp("dinov2") / "dinov2_vits14_pretrain.pth"
    torch.save(state, path)
    return dinov2.load_dinov2("vits14", path, "cpu")


@pytest.fixture(scope="module")
def peer(extractor):
    with mock.patch("torch.hub.load", return_value=extractor.model):
        return FeatureExtractorDinoV2("dinov2-vit-s-14", ["dinov2"])


@pytest.mark.parametrize("size", [32, 224], ids=["rgb32", "rgb224"])
def test_dinov2_throughput(benchmark, extractor, peer, size):
    g = torch.Generator().manual_seed(size)
    images = torch.randint(0, 256, (BATCH, 3, size, size), dtype=torch.uint8, generator=g)
    peer_seconds, peer_out = [], []

    def time_torch_fidelity():
        start = time.perf_counter()
        with torch.inference_mode():
            peer_out[:] = [peer(images)[0].numpy()]
        peer_seconds.append(time.perf_counter() - start)

    def ours():
        return extractor.features(images, batch_size=BATCH)

    feats = benchmark.pedantic(ours, setup=time_torch_fidelity, rounds=ROUNDS, warmup_rounds=1)
    diff = float(np.abs(feats - peer_out[0]).max())
    if size == 224:
        assert diff < 1e-4
    if benchmark.disabled:  # --benchmark-disable: one plain run, no timings
        return
    ours_rate = BATCH / benchmark.stats.stats.median
    peer_rate = BATCH / statistics.median(peer_seconds[1:])  # the first ran with the warm-up
    benchmark.extra_info.update(
        batch=BATCH,
        img_s=round(ours_rate, 2),
        torch_fidelity_img_s=round(peer_rate, 2),
        speedup=round(ours_rate / peer_rate, 2),
        max_abs_diff=diff,
    )
    print(f"\n{benchmark.extra_info}")
