"""FD and KID against their reference implementations, same inputs, at Inception scale.

Run with `pytest tests/benchmarks/test_bench_fd_kid.py --benchmark-only`. Targets: FD from
features >= 5x faster than np.cov + pytorch-fid, FD from statistics >= 8x faster than
pytorch-fid, KID at least 2x torch-fidelity in float64 at n=10,000 (at least as fast at
n=2,000). Timings on a shared CPU vary too much to assert the ratios here; compare the
medians within each group.
"""

import warnings

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from threadpoolctl import threadpool_limits
from torch_fidelity.metric_kid import kid_features_to_metric

from bench.metrics.fd import feature_stats, frechet_distance, frechet_distance_from_stats
from bench.metrics.kid import FULL_KERNEL_MAX_ROWS, kid

N, D = 10_000, 2048
ROUNDS = 3


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((N, D)).astype(np.float32)
    mix = np.eye(D) + rng.standard_normal((D, D)) / np.sqrt(D) / 4
    b = (rng.standard_normal((N, D)) @ mix + 0.1).astype(np.float32)
    return a, b


@pytest.fixture(scope="module")
def stats(features):
    return (*feature_stats(features[0]), *feature_stats(features[1]))


def pytorch_fid(mu1, sigma1, mu2, sigma2):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # sqrtm's `disp`, SciPy 1.17
        return float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))


def np_cov_pytorch_fid(a, b):
    return pytorch_fid(
        a.mean(0, dtype=np.float64),
        np.cov(a, rowvar=False),
        b.mean(0, dtype=np.float64),
        np.cov(b, rowvar=False),
    )


# The peer runs with the default BLAS threads and with one thread, since two threads are
# several times slower for sqrtm when the two cores are shared with other work.
PEER_THREADS = pytest.mark.parametrize("threads", [None, 1], ids=["default-threads", "1-thread"])


def run(benchmark, fn, *args):
    return benchmark.pedantic(fn, args=args, rounds=ROUNDS, iterations=1)


@pytest.mark.benchmark(group="fd-from-features")
def test_fd_features_ours(benchmark, features, stats):
    result = run(benchmark, frechet_distance, *features)
    assert result == pytest.approx(frechet_distance_from_stats(*stats), rel=1e-12)


@pytest.mark.benchmark(group="fd-from-features")
@PEER_THREADS
def test_fd_features_np_cov_pytorch_fid(benchmark, features, stats, threads):
    with threadpool_limits(threads):
        result = run(benchmark, np_cov_pytorch_fid, *features)
    assert result == pytest.approx(frechet_distance_from_stats(*stats), rel=1e-9)


@pytest.mark.benchmark(group="fd-from-stats")
def test_fd_stats_ours(benchmark, stats):
    run(benchmark, frechet_distance_from_stats, *stats)


@pytest.mark.benchmark(group="fd-from-stats")
@PEER_THREADS
def test_fd_stats_pytorch_fid(benchmark, stats, threads):
    with threadpool_limits(threads):
        result = run(benchmark, pytorch_fid, *stats)
    assert result == pytest.approx(frechet_distance_from_stats(*stats), rel=1e-9)


@pytest.fixture(scope="module", params=[N, 2000], ids=["n10000", "n2000"])
def features64(request, features):
    # float64 so that torch-fidelity computes in float64 too. At n <= 5,000 genbench computes
    # each float64 kernel matrix once and sums subsets from it (equal to 1e-12); at n=10,000
    # each subset's Gram matrices are float32 matmuls of centred features (equal to 1e-6).
    return tuple(torch.from_numpy(f[: request.param].astype(np.float64)) for f in features)


def kid_tolerance(n):
    return 1e-12 if n <= FULL_KERNEL_MAX_ROWS else 1e-6


KID_RESULTS = {}


def ours_kid(features64):
    n = len(features64[0])
    if n not in KID_RESULTS:
        KID_RESULTS[n] = kid(*features64)
    return KID_RESULTS[n]


def torch_fidelity_kid(a, b):
    result = kid_features_to_metric(a, b, rng_seed=0, verbose=False)
    return result["kernel_inception_distance_mean"], result["kernel_inception_distance_std"]


@pytest.mark.benchmark(group="kid")
def test_kid_ours(benchmark, features64):
    KID_RESULTS[len(features64[0])] = run(benchmark, kid, *features64)


@pytest.mark.benchmark(group="kid")
def test_kid_torch_fidelity(benchmark, features64):
    mean, std = run(benchmark, torch_fidelity_kid, *features64)
    ours_mean, ours_std = ours_kid(features64)
    assert ours_mean == pytest.approx(mean, rel=kid_tolerance(len(features64[0])))
    assert ours_std == pytest.approx(std, rel=kid_tolerance(len(features64[0])))


@pytest.mark.benchmark(group="kid")
def test_kid_torch_fidelity_float32(benchmark, features64):
    """Fed float32 features (as its Inception gives them), torch-fidelity computes the
    kernels and their sums in float32 too: faster than in float64, and further off (its
    std by about 4e-5 relative at n=10,000)."""
    a, b = (f.float() for f in features64)
    mean, std = run(benchmark, torch_fidelity_kid, a, b)
    ours_mean, ours_std = ours_kid(features64)
    assert ours_mean == pytest.approx(mean, rel=1e-4)
    assert ours_std == pytest.approx(std, rel=1e-3)
