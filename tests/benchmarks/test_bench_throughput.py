"""The harness's throughput measurement against a bare timed loop on the same model.

Run: make benchmarks (or pytest tests/benchmarks --benchmark-only)."""

import statistics
import time

import torch

from bench.throughput import measure_throughput

CPU = torch.device("cpu")


class ConvSampler:
    def __init__(self):
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(32, 1, 3, padding=1),
        )

    @torch.inference_mode()
    def sample(self, n, *, generator, batch_size):
        return self.net(torch.randn(n, 1, 28, 28, generator=generator))


def bare_loop(model, batch_size, repeats):
    g = torch.Generator().manual_seed(0)
    model.sample(batch_size, generator=g, batch_size=batch_size)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.sample(batch_size, generator=g, batch_size=batch_size)
        times.append(time.perf_counter() - t0)
    return batch_size / statistics.median(times)


def harness(model, batch_size, repeats):
    g = torch.Generator().manual_seed(0)
    fn = lambda b: model.sample(b, generator=g, batch_size=b)  # noqa: E731
    return measure_throughput(fn, batch_size, CPU, warmup=1, repeats=repeats)["img_s"]


def test_bare_loop(benchmark):
    benchmark.pedantic(bare_loop, args=(ConvSampler(), 64, 10), rounds=5)


def test_harness(benchmark):
    benchmark.pedantic(harness, args=(ConvSampler(), 64, 10), rounds=5)


def test_harness_overhead_under_2_percent(benchmark):
    """Interleave both measurements so machine load hits them alike; compare the medians."""
    model = ConvSampler()
    ours, bare = [], []
    for _ in range(7):
        ours.append(harness(model, 64, 10))
        bare.append(bare_loop(model, 64, 10))
    ratio = statistics.median(bare) / statistics.median(ours)
    benchmark.extra_info["bare_over_harness_time_ratio"] = ratio
    benchmark.pedantic(lambda: None, rounds=1)
    assert ratio > 0.98, f"harness reports {100 * (1 / ratio - 1):.1f}% lower throughput"
