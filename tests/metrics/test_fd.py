import warnings

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from threadpoolctl import threadpool_limits

from bench.errors import UserError
from bench.metrics import fd
from bench.metrics.fd import (
    fd_infinity,
    fd_infinity_min_n,
    fd_infinity_sizes,
    feature_stats,
    frechet_distance,
    frechet_distance_from_stats,
)


def pytorch_fid(mu1, sigma1, mu2, sigma2) -> float:
    # pytorch-fid passes sqrtm's `disp`, deprecated in SciPy 1.17 (removed in 1.18). One
    # BLAS thread: sqrtm is several times slower with two on a shared 2-core machine.
    with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
        warnings.simplefilter("ignore", DeprecationWarning)
        return float(calculate_frechet_distance(mu1, sigma1, mu2, sigma2))


def random_stats(rng, d):
    w = rng.standard_normal((d, d))
    return rng.standard_normal(d), w @ w.T / d + 0.5 * np.eye(d)


def rotated_diag(rng, a):
    q, _ = np.linalg.qr(rng.standard_normal((a.size, a.size)))
    return (q * a) @ q.T, q


@pytest.mark.parametrize("d", [2, 64, 300, pytest.param(2048, marks=pytest.mark.slow)])
def test_matches_pytorch_fid(d):
    rng = np.random.default_rng(d)
    mu1, sigma1 = random_stats(rng, d)
    mu2, sigma2 = random_stats(rng, d)
    ours = frechet_distance_from_stats(mu1, sigma1, mu2, sigma2)
    assert ours == pytest.approx(pytorch_fid(mu1, sigma1, mu2, sigma2), rel=1e-9)


def test_matches_pytorch_fid_on_feature_statistics():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 64)).astype(np.float32)
    b = (rng.standard_normal((400, 64)) @ rng.standard_normal((64, 64)) / 8 + 0.3).astype(
        np.float32
    )
    oracle = pytorch_fid(
        a.mean(0, dtype=np.float64),
        np.cov(a, rowvar=False),
        b.mean(0, dtype=np.float64),
        np.cov(b, rowvar=False),
    )
    assert frechet_distance(a, b) == pytest.approx(oracle, rel=1e-9)


def test_commuting_covariances_closed_form():
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 2.0, 64)
    b = rng.uniform(0.5, 2.0, 64)
    s1, q = rotated_diag(rng, a)
    s2 = (q * b) @ q.T
    mu1, mu2 = rng.standard_normal(64), rng.standard_normal(64)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-12)


def test_rank_deficient_covariances_closed_form():
    # Both covariances singular (Cholesky fails on both), with eigenvalues at rounding level.
    rng = np.random.default_rng(2)
    a = rng.uniform(0.5, 2.0, 256)
    b = rng.uniform(0.5, 2.0, 256)
    a[::2] = 0.0
    a[1::5] = 1e-12
    b[1::3] = 0.0
    s1, q = rotated_diag(rng, a)
    s2 = (q * b) @ q.T
    mu = rng.standard_normal(256)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    result = frechet_distance_from_stats(mu, s1, mu, s2)
    assert result == pytest.approx(expected, rel=1e-7)
    assert frechet_distance_from_stats(mu, s2, mu, s1) == pytest.approx(result, rel=1e-7)


def test_fewer_samples_than_dimensions_matches_nuclear_norm():
    # With n < d, pytorch-fid's sqrtm raises "Imaginary component" on such statistics.
    # Exact form: tr sqrt(S1 S2) = ||A B^T||_* / (n - 1) for centred data A, B.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 256))
    y = rng.standard_normal((20, 256)) * 1.5 + 0.1
    a, b = x - x.mean(0), y - y.mean(0)
    expected = (
        np.sum((x.mean(0) - y.mean(0)) ** 2)
        + (np.sum(a**2) + np.sum(b**2) - 2 * np.linalg.norm(a @ b.T, "nuc")) / 19
    )
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(x, x + 0.5) == pytest.approx(0.25 * 256, rel=1e-9)


@pytest.mark.parametrize("n", [10, 1000])
def test_identical_sets_give_zero(n):
    x = np.random.default_rng(n).standard_normal((n, 64))
    assert abs(frechet_distance(x, x)) < 1e-9


def test_negative_distance_is_refused_not_clamped_to_zero():
    """#34 item 5: a covariance that is not symmetric positive semi-definite makes the sum
    negative (here -2.6), which was reported as 0.0, the best score."""
    eye, lower = np.eye(2), np.array([[1.0, 0.0], [-10.0, 1.0]])
    with pytest.raises(UserError, match=r"came out at -2.6\d* < 0: a covariance is not"):
        frechet_distance_from_stats(np.zeros(2), eye, np.zeros(2), lower)


def test_feature_stats_chunked_float32_and_torch(monkeypatch):
    x = np.random.default_rng(4).standard_normal((1000, 64)).astype(np.float32) * 3 + 5
    monkeypatch.setattr(fd, "_CHUNK_ELEMENTS", 64 * 7)  # 143 chunks of 7 rows
    mu, sigma = feature_stats(torch.from_numpy(x))
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False), atol=1e-12)


def test_torch_and_numpy_inputs_agree():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((300, 16)), rng.standard_normal((300, 16)) + 0.2
    expected = frechet_distance(a, b)
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(b).float()) == pytest.approx(
        expected, rel=1e-6
    )
    mu1, s1 = feature_stats(a)
    mu2, s2 = feature_stats(b)
    as_torch = [torch.from_numpy(v) for v in (mu1, s1, mu2, s2)]
    assert frechet_distance_from_stats(*as_torch) == expected


def gaussian_pair(seed, n=4000, d=64):
    """Fake ~ N(0.1, diag(s)) against exact reference N(0, I); returns the true FD too."""
    s = np.linspace(0.5, 2.0, d)
    x = np.random.default_rng(seed).standard_normal((n, d)) * np.sqrt(s) + 0.1
    true_fd = 0.01 * d + np.sum((np.sqrt(s) - 1) ** 2)
    return x, np.zeros(d), np.eye(d), true_fd


def test_fd_infinity_removes_small_sample_bias():
    x, mu_ref, sigma_ref, true_fd = gaussian_pair(0)
    fd_small = frechet_distance_from_stats(*feature_stats(x[:400]), mu_ref, sigma_ref)
    fd_full = frechet_distance_from_stats(*feature_stats(x), mu_ref, sigma_ref)
    fd_inf = fd_infinity(x, mu_ref, sigma_ref)
    assert fd_small - true_fd > 2.0  # ~3.9 true, biased upward by ~2.9 at n = 400
    assert fd_full - true_fd > 0.2
    assert abs(fd_inf - true_fd) < 0.25 * (fd_full - true_fd)
    assert fd_inf == pytest.approx(true_fd, rel=0.01)


def test_fd_infinity_is_deterministic_and_seeded():
    x, mu_ref, sigma_ref, _ = gaussian_pair(1, n=1000, d=16)
    first = fd_infinity(x, mu_ref, sigma_ref, num_points=5, seed=3)
    assert fd_infinity(x, mu_ref, sigma_ref, num_points=5, seed=3) == first
    assert fd_infinity(x, mu_ref, sigma_ref, num_points=5, seed=4) != first


def test_fd_infinity_sizes_follow_the_feature_dimension():
    assert fd_infinity_min_n(128) == 2048
    sizes = fd_infinity_sizes(2048, 128)
    assert (sizes[0], sizes[-1], len(sizes)) == (512, 2048, 15)
    # Chong & Forsyth's 5000..50,000 once n // 10 is above 4 d; 4 d when it is not.
    assert list(fd_infinity_sizes(50_000, 64)) == list(np.linspace(5000, 50_000, 15).astype(int))
    assert fd_infinity_sizes(50_000, 2048)[0] == 8192
    with pytest.raises(UserError, match=r"at least 2048 samples for 128-dim.*got n = 1000"):
        fd_infinity_sizes(1000, 128)
    with pytest.raises(UserError, match="positive integer"):
        fd_infinity_min_n(0)


D_BIAS = 128


@pytest.fixture(scope="module")
def population_pair():
    """Fake ~ N(0.05, Q diag(0.7..1.4) Q^T), reference exactly N(0, I), d = 128, and the
    population FD between them from the closed form."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((D_BIAS, D_BIAS)))
    cov = (q * np.linspace(0.7, 1.4, D_BIAS)) @ q.T
    mean = np.full(D_BIAS, 0.05)
    mu_ref, sigma_ref = np.zeros(D_BIAS), np.eye(D_BIAS)
    truth = frechet_distance_from_stats(mean, cov, mu_ref, sigma_ref)

    def draw(n, seed):
        z = np.random.default_rng(100 + seed).standard_normal((n, D_BIAS))
        return z @ np.linalg.cholesky(cov).T + mean

    return draw, mu_ref, sigma_ref, truth


def test_fd_infinity_refuses_n_1000_at_d_128(population_pair):
    # The case: the old rule (subsets from n // 10 = 100) gave -87% here.
    draw, mu_ref, sigma_ref, _ = population_pair
    with pytest.raises(UserError, match=r"at least 2048 samples for 128-dim.*got n = 1000"):
        fd_infinity(draw(1000, 0), mu_ref, sigma_ref)


def test_fd_infinity_is_within_10_percent_of_population_fd(population_pair):
    draw, mu_ref, sigma_ref, truth = population_pair
    assert truth == pytest.approx(1.659, abs=1e-3)
    for seed in range(4):
        x = draw(4096, seed)
        plain = frechet_distance_from_stats(*feature_stats(x), mu_ref, sigma_ref)
        assert plain > 1.5 * truth  # what fd_infinity has to remove
        assert fd_infinity(x, mu_ref, sigma_ref, seed=seed) == pytest.approx(truth, rel=0.10)
    # At the smallest n accepted, single draws stray up to ~13% (measured over 12 seeds);
    # their mean is within 10%.
    n_min = fd_infinity_min_n(D_BIAS)
    at_min = [fd_infinity(draw(n_min, s), mu_ref, sigma_ref, seed=s) for s in range(6)]
    assert np.mean(at_min) == pytest.approx(truth, rel=0.10)


GOOD = np.random.default_rng(6).standard_normal((10, 3))
MU, SIGMA = np.zeros(3), np.eye(3)


def with_nan(x):
    x = x.copy()
    x.flat[1] = np.nan
    return x


def with_inf(x):
    x = x.copy()
    x.flat[0] = np.inf
    return x


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: frechet_distance(with_nan(GOOD), GOOD), "NaN or inf"),
        (lambda: frechet_distance(GOOD, with_inf(GOOD)), "NaN or inf"),
        (lambda: frechet_distance(GOOD[:1], GOOD), "at least 2 samples"),
        (lambda: frechet_distance(GOOD, GOOD[:, :2]), "mismatched feature dimensions"),
        (lambda: frechet_distance(GOOD[0], GOOD), "must have 2 dimensions"),
        (lambda: frechet_distance(GOOD.astype(str), GOOD), "real numbers"),
        (lambda: feature_stats(np.full((3, 2), 1e308)), "overflows"),
        (lambda: frechet_distance_from_stats(MU, SIGMA, MU[:2], SIGMA[:2, :2]), "mismatched"),
        (lambda: frechet_distance_from_stats(MU, SIGMA[:2], MU, SIGMA), "mismatched"),
        (lambda: frechet_distance_from_stats(SIGMA, SIGMA, MU, SIGMA), "must have 1 dimensions"),
        (lambda: frechet_distance_from_stats(MU, with_nan(SIGMA), MU, SIGMA), "NaN or inf"),
        (lambda: fd_infinity(GOOD, MU[:2], SIGMA[:2, :2]), "mismatched feature dimensions"),
        (lambda: fd_infinity(GOOD, MU, SIGMA), "at least 48 samples"),
        (lambda: fd_infinity(GOOD, MU, SIGMA, num_points=1), "num_points"),
    ],
)
def test_bad_input_raises_user_error(call, message):
    with pytest.raises(UserError, match=message):
        call()
