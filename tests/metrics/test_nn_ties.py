"""Nearest-neighbour ties break by the lowest index, so no result depends on the tile size.

Integer-valued features make every distance exact (float64 sums of integer products), so
ties are real ties and any dependence on `chunk` would come from the tie-breaking alone.
"""

import contextlib
import io

import numpy as np
import pytest
from prdc import compute_prdc

from bench.metrics.distances import knn
from bench.metrics.memorization import memorization, nearest_training_indices
from bench.metrics.prdc import prdc_metrics

CHUNKS = (1, 5, 97, 2048)


def lattice(seed, n, dim=3, levels=3, dtype=np.float32):
    """Points on a small integer lattice, with whole rows duplicated: many exact ties."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, (n, dim))
    x[n // 2 :] = x[rng.integers(0, n // 2, n - n // 2)]
    return x.astype(dtype)


def lowest_index_knn(query, ref, k, exclude_self=False):
    """Brute force: exact squared distances, ordered by (distance, index)."""
    sq = ((query[:, None, :].astype(np.int64) - ref[None, :, :].astype(np.int64)) ** 2).sum(-1)
    if exclude_self:
        np.fill_diagonal(sq, np.iinfo(np.int64).max)
    order = np.argsort(sq, axis=1, kind="stable")[:, :k]
    return np.sqrt(np.take_along_axis(sq, order, axis=1)), order


@pytest.mark.parametrize("chunk", CHUNKS)
def test_knn_breaks_ties_by_lowest_index(chunk):
    query, ref = lattice(0, 60), lattice(1, 90)
    dist, idx = knn(query, ref, 6, chunk=chunk)
    want_dist, want_idx = lowest_index_knn(query, ref, 6)
    assert np.array_equal(idx.numpy(), want_idx)
    assert np.array_equal(dist.numpy(), want_dist.astype(np.float32))


@pytest.mark.parametrize("chunk", CHUNKS)
def test_knn_within_set_breaks_ties_by_lowest_index(chunk):
    x = lattice(2, 80)
    want_dist, want_idx = lowest_index_knn(x, x, 5, exclude_self=True)
    for ref in (x, x.copy()):  # the symmetric half-pass and the general path
        dist, idx = knn(x, ref, 5, exclude_self=True, chunk=chunk)
        assert np.array_equal(idx.numpy(), want_idx)
        assert np.array_equal(dist.numpy(), want_dist.astype(np.float32))


def test_nearest_training_image_is_the_first_copy():
    train = lattice(3, 50)
    train[[7, 23, 41]] = [9, 9, 9]  # one image three times
    idx = nearest_training_indices(np.array([[9, 9, 9]], np.float32), train, 3, chunk=16)
    assert idx.tolist() == [[7, 23, 41]]


def test_memorization_does_not_depend_on_chunk_size():
    # Ties everywhere: which of several equidistant training points is "the" nearest one
    # decides AuthPct, so topk's arbitrary order made it depend on the tile size (#16).
    train, test, fake = lattice(4, 100, levels=4), lattice(5, 100, levels=4), lattice(6, 100)
    results = [memorization(train, test, fake, chunk=chunk) for chunk in CHUNKS]
    assert all(r == results[0] for r in results[1:])
    assert 0 < results[0]["authpct"] < 100


def test_prdc_does_not_depend_on_chunk_size_and_matches_package():
    real, fake = lattice(7, 90, dim=4), lattice(8, 80, dim=4)
    results = [prdc_metrics(real, fake, k_pr=3, k_dc=5, chunk=chunk) for chunk in CHUNKS]
    assert all(r == results[0] for r in results[1:])
    with contextlib.redirect_stdout(io.StringIO()):
        pr, dc = compute_prdc(real, fake, 3), compute_prdc(real, fake, 5)
    assert results[0] == {
        "precision": float(pr["precision"]),
        "recall": float(pr["recall"]),
        "density": float(dc["density"]),
        "coverage": float(dc["coverage"]),
    }


def test_float32_features_with_duplicated_rows_do_not_depend_on_chunk_size():
    # Real-valued float32 features: each duplicated training row is equidistant from every
    # generated sample, and the float32 rounding of the distances hides the BLAS's
    # tile-shape-dependent summation order.
    rng = np.random.default_rng(9)
    train = rng.standard_normal((120, 24)).astype(np.float32)
    train[60:] = train[rng.integers(0, 60, 60)]
    test = rng.standard_normal((120, 24)).astype(np.float32)
    fake = train[rng.integers(0, 120, 120)] + np.float32(0.3) * rng.standard_normal(
        (120, 24), dtype=np.float32
    )
    results = [memorization(train, test, fake, chunk=chunk) for chunk in (7, 97, 2048)]
    assert all(r == results[0] for r in results[1:])
    indices = [nearest_training_indices(fake, train, 2, chunk=c) for c in (7, 97, 2048)]
    assert all(np.array_equal(i.numpy(), indices[0].numpy()) for i in indices[1:])
