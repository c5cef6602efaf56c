"""PRDC speed against the prdc package, and memory at 50,000 x 50,000.

Run with: pytest tests/benchmarks/test_bench_prdc.py --benchmark-only -p no:cacheprovider
"""

import contextlib
import io
import json
import statistics
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from prdc import compute_prdc

from bench.metrics.prdc import prdc

DIM = 2048


def features(n, seed):
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n, DIM), dtype=np.float32)
    fake = rng.standard_normal((n, DIM), dtype=np.float32) * np.float32(1.1) + np.float32(0.1)
    return real, fake


def test_prdc_speed_vs_package_5k(benchmark):
    real, fake = features(5_000, 0)
    ours = benchmark.pedantic(prdc, (real, fake), {"nearest_k": 5}, rounds=3, iterations=1)

    package_times = []
    for _ in range(2):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            theirs = compute_prdc(real, fake, 5)
        package_times.append(time.perf_counter() - start)
    package = statistics.median(package_times)
    speedup = package / benchmark.stats.stats.median
    benchmark.extra_info.update(package_median_s=package, speedup=speedup)

    assert ours == {name: float(v) for name, v in theirs.items()}
    assert speedup >= 2, f"only {speedup:.2f}x faster than the prdc package"


# Runs in a fresh interpreter so ru_maxrss measures this computation alone.
_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    import torch
    from bench.metrics.prdc import prdc_metrics
    n, dim = int(sys.argv[1]), int(sys.argv[2])
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(n, dim, generator=gen)
    fake = torch.randn(n, dim, generator=gen)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = prdc_metrics(real, fake, k_pr=3, k_dc=5)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_kb": after - before, "peak_kb": after, "seconds": seconds,
                      "result": result}))
    """
)


@pytest.mark.slow(reason="50,000 x 50,000 at d=2048 is ~2e13 flops: about 20 min on 2 CPU cores")
def test_prdc_memory_50k(benchmark):
    def run():
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_SCRIPT, "50000", str(DIM)],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    got = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(got)
    assert got["growth_kb"] < 4 * 1024 * 1024, f"peak RSS grew by {got['growth_kb']} kB"
    assert 0 < got["result"]["precision"] <= 1
