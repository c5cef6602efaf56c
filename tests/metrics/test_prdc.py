"""k-NN search and precision/recall/density/coverage against the prdc package."""

import contextlib
import io

import numpy as np
import pytest
import torch
from prdc import compute_prdc
from sklearn.metrics import pairwise_distances

from bench.errors import UserError
from bench.metrics.distances import distance_tiles, knn, kth_radii, points
from bench.metrics.prdc import prdc, prdc_metrics


def reference(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the sizes
        return {name: float(v) for name, v in compute_prdc(real, fake, k).items()}


def gaussians(seed, n_real, n_fake, dim, dtype):
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n_real, dim)).astype(dtype)
    fake = (1.2 * rng.standard_normal((n_fake, dim)) + 0.2).astype(dtype)
    return real, fake


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_prdc_equals_package(dtype, k):
    real, fake = gaussians(k, 400, 350, 24, dtype)
    # A small chunk makes the tiling (and the symmetric half-pass) do real work.
    assert prdc(real, fake, nearest_k=k, chunk=64) == reference(real, fake, k)


@pytest.mark.parametrize(
    ("scale", "dtype"), [(1.0, np.float32), (0.1, np.float32), (1.0, np.float64)]
)
def test_prdc_equals_package_with_ties(scale, dtype):
    # Coarse lattices give duplicates and many exactly tied distances, where the strict `<`,
    # the float32 rounding and the square root's rounding all have to be sklearn's. (Not
    # float64 at scale 0.1: there which ties survive depends on the BLAS's summation order.)
    rng = np.random.default_rng(7)
    for dim in (2, 3, 6):
        real = (rng.integers(0, 5, (300, dim)) * scale).astype(dtype)
        fake = (rng.integers(0, 5, (260, dim)) * scale).astype(dtype)
        for k in (2, 3, 5):
            assert prdc(real, fake, nearest_k=k, chunk=50) == reference(real, fake, k)


def test_prdc_equals_package_mixed_dtypes_and_offset():
    rng = np.random.default_rng(3)
    real = (rng.standard_normal((300, 16)) + 100).astype(np.float32)
    fake = rng.standard_normal((280, 16)) + 100
    assert prdc(real, fake, nearest_k=3) == reference(real, fake, 3)


def test_prdc_metrics_shares_one_pass_over_two_ks():
    real, fake = gaussians(11, 500, 450, 32, np.float32)
    got = prdc_metrics(torch.from_numpy(real), torch.from_numpy(fake), k_pr=3, k_dc=5, chunk=128)
    pr, dc = reference(real, fake, 3), reference(real, fake, 5)
    assert got == {
        "precision": pr["precision"],
        "recall": pr["recall"],
        "density": dc["density"],
        "coverage": dc["coverage"],
    }


def test_prdc_identical_sets_are_perfect():
    real, _ = gaussians(0, 200, 1, 8, np.float64)
    got = prdc(real, real.copy(), nearest_k=3)
    assert got["precision"] == got["recall"] == got["coverage"] == 1.0


@pytest.mark.slow(reason="10k x 10k at d=1000 takes about half a minute on 2 CPU cores")
def test_prdc_readme_reference():
    # prdc README: N(0, I) in 1000-d, 10k real vs 10k fake, k=5 gives about P 0.477,
    # R 0.471, D 1.056, C 0.974. That is one draw: over seeds we see P and R within
    # +-0.02 of it, D from 0.95 to 1.13 and C from 0.96 to 0.98, hence the tolerances.
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(10_000, 1000, generator=gen)
    fake = torch.randn(10_000, 1000, generator=gen)
    got = prdc(real, fake, nearest_k=5)
    assert got["precision"] == pytest.approx(0.477, abs=0.03)
    assert got["recall"] == pytest.approx(0.471, abs=0.03)
    assert got["density"] == pytest.approx(1.056, abs=0.12)
    assert got["coverage"] == pytest.approx(0.974, abs=0.015)


def test_distance_tiles_cover_sklearn_matrix():
    real, fake = gaussians(5, 70, 45, 9, np.float32)
    a, b = points(real, "a"), points(fake, "b")
    full = torch.zeros(70, 45)
    for rows, cols, d in distance_tiles(a, b, chunk=16):
        full[rows, cols] = d
    assert np.array_equal(full.numpy(), pairwise_distances(real, fake))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_knn_matches_brute_force(dtype):
    query, ref = gaussians(2, 57, 83, 5, dtype)
    dist, idx = knn(query, ref, 4, chunk=10)
    full = pairwise_distances(query, ref)
    order = np.argsort(full, axis=1, kind="stable")[:, :4]
    assert np.array_equal(idx.numpy(), order)
    # float32 results are sklearn's bit for bit; float64 ones to the BLAS's rounding.
    np.testing.assert_allclose(dist.numpy(), np.take_along_axis(full, order, axis=1), rtol=1e-13)
    assert dist.dtype == (torch.float32 if dtype == np.float32 else torch.float64)


def test_knn_exclude_self_symmetric_and_general_paths_agree():
    x, _ = gaussians(4, 90, 1, 6, np.float64)
    full = pairwise_distances(x)
    np.fill_diagonal(full, np.inf)
    expected = np.sort(full, axis=1)[:, :3]
    sym_dist, sym_idx = knn(x, x, 3, exclude_self=True, chunk=16)  # same object: half pass
    gen_dist, gen_idx = knn(x, x.copy(), 3, exclude_self=True, chunk=16)
    np.testing.assert_allclose(sym_dist.numpy(), expected, rtol=1e-13)
    np.testing.assert_allclose(gen_dist.numpy(), expected, rtol=1e-13)
    assert np.array_equal(sym_idx.numpy(), gen_idx.numpy())
    assert not (sym_idx.numpy() == np.arange(90)[:, None]).any()
    np.testing.assert_allclose(kth_radii(x, 3, chunk=16).numpy(), expected[:, 2], rtol=1e-13)


def test_knn_without_exclude_self_finds_itself():
    x, _ = gaussians(4, 40, 1, 6, np.float32)
    dist, idx = knn(x, x, 1, chunk=7)
    assert np.array_equal(idx[:, 0].numpy(), np.arange(40))
    assert float(dist.max()) < 1e-3


@pytest.mark.parametrize(
    ("real", "fake", "k", "message"),
    [
        (np.full((10, 3), np.nan), np.zeros((10, 3)), 3, "NaN or infinite"),
        (np.zeros((10, 3)), np.full((10, 3), np.inf), 3, "NaN or infinite"),
        (np.zeros((10, 3)), np.zeros((10, 4)), 3, "features"),
        (np.zeros(10), np.zeros((10, 3)), 3, "2-D"),
        (np.zeros((10, 3, 1)), np.zeros((10, 3)), 3, "2-D"),
        (np.zeros((4, 3)), np.zeros((10, 3)), 4, "k=4 neighbours need at least 5"),
        (np.zeros((10, 3)), np.zeros((4, 3)), 4, "k=4 neighbours need at least 5"),
        (np.zeros((10, 3)), np.zeros((10, 3)), 0, "positive integer"),
        (np.zeros((0, 3)), np.zeros((10, 3)), 3, "empty"),
        (np.zeros((10, 3), dtype=bool), np.zeros((10, 3)), 3, "real numbers"),
    ],
)
def test_prdc_bad_input_raises_user_error(real, fake, k, message):
    with pytest.raises(UserError, match=message):
        prdc(real, fake, nearest_k=k)


def test_knn_bad_input_raises_user_error():
    x = np.zeros((5, 2))
    with pytest.raises(UserError, match="k=5 neighbours need at least 6"):
        knn(x, x, 5, exclude_self=True)
    with pytest.raises(UserError, match="equal length"):
        knn(x, np.zeros((6, 2)), 1, exclude_self=True)
    with pytest.raises(UserError, match="chunk"):
        knn(x, x, 1, chunk=0)
    with pytest.raises(UserError, match="numpy array or torch tensor"):
        knn([[0.0, 1.0]], x, 1)
