"""Sampling throughput: images per second at a stated batch size, after warm-up, with the
device synchronized around the timed region, median over repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from bench.device import synchronize


def measure_throughput(
    sample_batch: Callable[[int], object],
    batch_size: int,
    device: torch.device,
    *,
    warmup: int = 1,
    repeats: int = 3,
) -> dict[str, float]:
    """Time `sample_batch(batch_size)`; returns img/s and ms/img (medians) and peak memory."""
    for _ in range(warmup):
        sample_batch(batch_size)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        sample_batch(batch_size)
        synchronize(device)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    out = {
        "img_s": batch_size / median,
        "ms_per_img": 1000.0 * median / batch_size,
        "repeats": float(repeats),
    }
    if device.type == "cuda":
        out["peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out
