import threading
import time

import numpy as np
import pytest
import torch
from cleanfid.fid import kernel_distance
from threadpoolctl import threadpool_info
from torch_fidelity.metric_kid import kid_features_to_metric

from bench.errors import UserError
from bench.metrics import kid as kid_module
from bench.metrics.kid import kid, kid_from_subsets, kid_subset_indices


@pytest.fixture(autouse=True, params=["full-kernels", "per-subset"])
def kernel_path(request, monkeypatch):
    """Every test runs through both ways of computing the subset sums."""
    if request.param == "per-subset":
        monkeypatch.setattr(kid_module, "FULL_KERNEL_MAX_ROWS", 0)
    return request.param


def features(seed, n, d=32, shift=0.0):
    return np.random.default_rng(seed).standard_normal((n, d)) + shift


def brute_force_mmd2(x, y):
    m, d = x.shape

    def k(u, v):
        return (u @ v / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / m**2


def test_matches_brute_force_unbiased_mmd():
    x, y = features(0, 6, d=3), features(1, 6, d=3, shift=0.5)
    idx = np.arange(6)[None]
    mean, std = kid_from_subsets(x, y, idx, idx)
    assert mean == pytest.approx(brute_force_mmd2(x, y), rel=1e-12)
    assert std == 0.0


@pytest.mark.parametrize(("n_a", "n_b", "subset_size"), [(300, 400, 100), (150, 200, 1000)])
def test_matches_torch_fidelity_with_same_seed(n_a, n_b, subset_size):
    a, b = features(2, n_a), features(3, n_b, shift=0.2)
    mean, std = kid(a, b, num_subsets=20, subset_size=subset_size, seed=7)
    theirs = kid_features_to_metric(
        torch.from_numpy(a),
        torch.from_numpy(b),
        kid_subsets=20,
        kid_subset_size=min(subset_size, n_a, n_b),
        rng_seed=7,
        verbose=False,
    )
    assert mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-12)
    assert std == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-12)


def test_float32_grams_match_torch_fidelity_far_from_the_origin():
    """From FLOAT32_GRAM_MIN_DIM on, per-subset Gram matrices are float32 matmuls of the
    centred features: features all near 10 still give torch-fidelity's float64 values to 1e-6
    (float32 matmuls of the uncentred features miss the mean by 4e-6)."""
    d = kid_module.FLOAT32_GRAM_MIN_DIM
    a, b = features(14, 300, d, shift=10.0), features(15, 400, d, shift=10.05)
    mean, std = kid(a, b, num_subsets=20, subset_size=100, seed=7)
    theirs = kid_features_to_metric(
        torch.from_numpy(a),
        torch.from_numpy(b),
        kid_subsets=20,
        kid_subset_size=100,
        rng_seed=7,
        verbose=False,
    )
    assert mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-6)
    assert std == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-6)


def test_matches_clean_fid_kernel_distance_on_same_subsets():
    a, b = features(4, 300), features(5, 250, shift=0.2)
    # clean-fid draws from np.random's global state: b's subset first, then a's.
    np.random.seed(11)
    theirs = kernel_distance(a, b, num_subsets=10, max_subset_size=100)
    np.random.seed(11)
    idx_a, idx_b = [], []
    for _ in range(10):
        idx_b.append(np.random.choice(250, 100, replace=False))
        idx_a.append(np.random.choice(300, 100, replace=False))
    mean, _ = kid_from_subsets(a, b, np.array(idx_a), np.array(idx_b))
    assert mean == pytest.approx(theirs, rel=1e-12)


def test_same_distribution_is_near_zero():
    a, b = features(6, 2000), features(7, 2000)
    same, same_std = kid(a, b, num_subsets=20, subset_size=500)
    shifted, _ = kid(a, features(8, 2000, shift=0.3), num_subsets=20, subset_size=500)
    assert abs(same) < 3 * same_std / np.sqrt(20)
    assert abs(same) < 0.01 * shifted


def test_deterministic_for_a_seed():
    a, b = features(9, 200), features(10, 200, shift=0.1)
    first = kid(a, b, num_subsets=5, subset_size=50, seed=1)
    assert kid(a, b, num_subsets=5, subset_size=50, seed=1) == first
    assert kid(a, b, num_subsets=5, subset_size=50, seed=2) != first


def test_subset_indices_shape_and_uniqueness():
    idx_a, idx_b = kid_subset_indices(50, 30, num_subsets=4, subset_size=1000, seed=0)
    assert idx_a.shape == idx_b.shape == (4, 30)
    assert all(len(set(row)) == 30 for row in idx_a)
    assert idx_a.max() < 50 and idx_b.max() < 30


def test_float32_torch_input_is_computed_in_float64():
    a, b = features(11, 200), features(12, 200, shift=0.1)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    from_numpy = kid(a32.astype(np.float64), b32.astype(np.float64), num_subsets=5)
    assert kid(torch.from_numpy(a32), torch.from_numpy(b32), num_subsets=5) == from_numpy


GOOD = features(13, 10, d=4)
IDX = np.arange(5)[None]


def with_nan(x):
    x = x.copy()
    x[2, 1] = np.nan
    return x


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: kid(with_nan(GOOD), GOOD), "NaN or inf"),
        (lambda: kid(GOOD, GOOD * np.inf), "NaN or inf"),
        (lambda: kid(GOOD[:1], GOOD), "at least 2 samples"),
        (lambda: kid(GOOD, GOOD[:, :3]), "mismatched feature dimensions"),
        (lambda: kid(GOOD[0], GOOD), "must have 2 dimensions"),
        (lambda: kid(GOOD, GOOD, num_subsets=0), "num_subsets"),
        (lambda: kid(GOOD, GOOD, subset_size=1), "at least 2 samples"),
        (lambda: kid_from_subsets(GOOD, GOOD, IDX, IDX[:, :4]), "subset indices must"),
        (lambda: kid_from_subsets(GOOD, GOOD, IDX + 6, IDX), "must index rows"),
        (lambda: kid_from_subsets(GOOD, GOOD, IDX * 1.0, IDX), "integer row indices"),
    ],
)
def test_bad_input_raises_user_error(call, message):
    with pytest.raises(UserError, match=message):
        call()


@pytest.mark.parametrize("d", [32, kid_module.FLOAT32_GRAM_MIN_DIM])
def test_subsets_in_threads_give_the_serial_values_bit_for_bit(monkeypatch, d):
    """With BLAS on several threads, subsets run side by side, each with one BLAS thread:
    the values equal one thread's exactly, and inside a subset BLAS has one thread."""
    a, b = features(16, 300, d), features(17, 350, d, shift=0.1)
    monkeypatch.setattr(kid_module, "_blas_threads", lambda: 1)
    serial = kid(a, b, num_subsets=12, subset_size=100)

    seen = []
    for name in ("_mmd2_centred", "_mmd2_from_kernels"):
        original = getattr(kid_module, name)

        def recording(*args, original=original):
            blas = {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
            seen.append((threading.get_ident(), blas))
            time.sleep(0.01)  # so that the other threads take subsets too
            return original(*args)

        monkeypatch.setattr(kid_module, name, recording)
    monkeypatch.setattr(kid_module, "_blas_threads", lambda: 3)
    assert kid(a, b, num_subsets=12, subset_size=100) == serial
    assert len(seen) == 12 and all(blas == {1} for _, blas in seen)
    assert len({thread for thread, _ in seen}) > 1
