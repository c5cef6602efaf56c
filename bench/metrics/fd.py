"""Fréchet distance between feature sets (FID on Inception features) and FD-infinity.

FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), all in float64. The trace term
is the sum of square roots of the eigenvalues of F^T S2 F with F F^T = S1 (F the Cholesky
factor, or an eigendecomposition root when S1 is singular): that matrix is symmetric and
has the nonzero eigenvalues of S1 S2, so eigvalsh suffices where scipy's sqrtm is slow
and breaks down on near-singular covariances.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from bench.errors import UserError
from bench.metrics import register_alias, register_metric

if TYPE_CHECKING:
    import torch

    from bench.scoring import ScoringContext

    ArrayLike = np.ndarray | torch.Tensor


# Multithreaded OpenBLAS Cholesky and eigensolvers collapse when the cores are shared: on a
# busy 2-core machine at d = 2048, one thread took 0.3-0.4 s (potrf) and 1-2 s (eigvalsh)
# where two took 2-7 s and 3-30 s. Matrix products keep their threads.
def _one_blas_thread() -> threadpool_limits:
    return threadpool_limits(1, user_api="blas")


# Rows per float64 chunk when accumulating a covariance: about 32 MB at d = 2048.
_CHUNK_ELEMENTS = 1 << 22


def to_numpy(x: ArrayLike, name: str, ndim: int) -> np.ndarray:
    """`x` as a real numeric numpy array with `ndim` dimensions (no copy when possible)."""
    loaded = sys.modules.get("torch")  # a tensor exists only once torch is loaded
    if loaded is not None and isinstance(x, loaded.Tensor):
        x = x.detach().cpu()
        if x.dtype in (loaded.bfloat16, loaded.float16):
            x = x.double()
        x = x.numpy()
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise UserError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise UserError(f"{name} must have {ndim} dimensions, got shape {tuple(arr.shape)}")
    return arr


def check_finite(arr: np.ndarray, name: str) -> None:
    if not np.isfinite(arr).all():
        raise UserError(f"{name} contains NaN or inf values")


def as_features(feats: ArrayLike, name: str) -> np.ndarray:
    """`feats` as an (n, d) numpy array with n >= 2 (no copy when possible)."""
    arr = to_numpy(feats, name, 2)
    if arr.shape[0] < 2:
        raise UserError(f"{name} needs at least 2 samples, got {arr.shape[0]}")
    return arr


def feature_stats(feats: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof=1, as np.cov) of `feats` (n, d), in float64.

    The covariance is accumulated over float64 chunks of mean-centred rows, so float32
    features are never copied to float64 whole.
    """
    x = as_features(feats, "features")
    n, d = x.shape
    with np.errstate(over="ignore", invalid="ignore"):
        mu = x.mean(axis=0, dtype=np.float64)
    if not np.isfinite(mu).all():
        check_finite(x, "features")
        raise UserError("features are too large: their mean overflows float64")
    from scipy.linalg import blas  # imported where used: a refused suite stays fast

    upper = np.zeros((d, d), order="F")
    step = max(1, _CHUNK_ELEMENTS // d)
    for start in range(0, n, step):
        c = x[start : start + step].astype(np.float64)
        c -= mu
        # syrk reads c.T (Fortran order) without a copy and accumulates into one triangle.
        upper = blas.dsyrk(1.0, c.T, beta=1.0, c=upper, overwrite_c=1)
    upper = np.triu(upper)
    return mu, (upper + np.triu(upper, 1).T) / (n - 1)


def _stats(mu: ArrayLike, sigma: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    mu = to_numpy(mu, f"{name} mean", 1).astype(np.float64, copy=False)
    sigma = to_numpy(sigma, f"{name} covariance", 2).astype(np.float64, copy=False)
    if sigma.shape != (mu.size, mu.size):
        raise UserError(
            f"mismatched feature dimensions: {name} mean has {mu.size}, "
            f"its covariance has shape {sigma.shape}"
        )
    check_finite(mu, f"{name} mean")
    check_finite(sigma, f"{name} covariance")
    return mu, sigma


def _cholesky(sigma: np.ndarray) -> np.ndarray | None:
    """Lower Cholesky factor of sigma, or None when it is not positive definite."""
    from scipy.linalg import lapack

    with _one_blas_thread():
        chol, info = lapack.dpotrf(sigma, lower=1, clean=1)
    return chol if info == 0 else None


def _range_root(sigma: np.ndarray) -> np.ndarray:
    """F = V sqrt(w) (d x r) with F F^T = sigma, over the eigenvalues above rounding level.

    Dropping the null space keeps its rounding noise out of the square roots.
    """
    with _one_blas_thread():
        w, v = np.linalg.eigh(sigma)
    keep = w > w[-1] * w.size * np.finfo(np.float64).eps
    return v[:, keep] * np.sqrt(w[keep])


def _trace_sqrt_product(factor: np.ndarray, lower: bool, sigma: np.ndarray) -> float:
    """tr((S1 S2)^(1/2)) given F F^T = S1 (lower: F is triangular) and sigma = S2."""
    from scipy.linalg import blas

    if lower:
        m = blas.dtrmm(1.0, factor, sigma, side=1, lower=1)
        m = blas.dtrmm(1.0, factor, m, side=0, lower=1, trans_a=1, overwrite_b=1)
    else:
        m = factor.T @ sigma @ factor
    with _one_blas_thread():
        eig = np.linalg.eigvalsh(m)
    return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


# A Fréchet distance is never negative; rounding makes a zero one about -1e-10 relative to
# the terms it sums at worst (rank-deficient float64 covariances), so anything below this is
# a covariance that is not symmetric positive semi-definite, not a perfect match.
_NEGATIVE_RTOL = 1e-6


def _fd(diff: np.ndarray, tr_sum: float, tr_sqrt: float) -> float:
    """The distance from its terms; a rounding-level negative one is 0, a larger one refused."""
    terms = float(diff @ diff) + tr_sum
    value = terms - 2.0 * tr_sqrt
    if value < -_NEGATIVE_RTOL * terms:
        raise UserError(
            f"the Fréchet distance came out at {value:.6g} < 0: a covariance is not symmetric "
            "positive semi-definite; recompute the statistics"
        )
    return max(value, 0.0)


def frechet_distance_from_stats(
    mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); rounding below 0 gives 0,
    a clearly negative sum (a covariance that is not positive semi-definite) a UserError."""
    mu1, sigma1 = _stats(mu1, sigma1, "first")
    mu2, sigma2 = _stats(mu2, sigma2, "second")
    if mu1.size != mu2.size:
        raise UserError(f"mismatched feature dimensions: {mu1.size} vs {mu2.size}")
    # tr sqrt(S1 S2) is symmetric in S1 and S2: factor whichever is positive definite.
    for s1, s2 in ((sigma1, sigma2), (sigma2, sigma1)):
        chol = _cholesky(s1)
        if chol is not None:
            tr_sqrt = _trace_sqrt_product(chol, True, s2)
            break
    else:
        tr_sqrt = _trace_sqrt_product(_range_root(sigma1), False, sigma2)
    return _fd(mu1 - mu2, float(np.trace(sigma1) + np.trace(sigma2)), tr_sqrt)


def frechet_distance(feats_a: ArrayLike, feats_b: ArrayLike) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets (n, d)."""
    a = as_features(feats_a, "first features")
    b = as_features(feats_b, "second features")
    if a.shape[1] != b.shape[1]:
        raise UserError(f"mismatched feature dimensions: {a.shape[1]} vs {b.shape[1]}")
    return frechet_distance_from_stats(*feature_stats(a), *feature_stats(b))


# FD-infinity subset sizes. FD on N samples averages FD + b/N + c/N^2 + ..., the 1/N^2 term
# large below a few times d, so a straight line fitted through such subsets removes
# too much: on Gaussian features at d = 128, n = 1000, the old smallest subset n // 10 = 100
# gave -87% of the population FD (issue #16), and even a 4 d = 512 floor gave -11% on
# average and -27% at worst, 512..1000 being too short a stretch of 1/N to extrapolate.
# Chong & Forsyth fit 15 sizes from 5000 to 50,000 (mchong6/FID_IS_infinity,
# score_infinity.py at commit e538d306, calculate_FID_infinity_path: min_fake=5000,
# num_points=15, np.linspace(min_fake, num_fake, num_points), `assert num_fake > min_fake`).
FDINF_SUBSET_PER_DIM = 4  # smallest subset >= 4 d
FDINF_SPAN = 4  # n >= 4 x smallest: the step from 1/n to 0 is <= 1/3 of the fitted 1/N range
FDINF_NUM_POINTS = 15


def fd_infinity_min_n(d: int) -> int:
    """Fewest samples `fd_infinity` accepts for d-dimensional features (16 d)."""
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise UserError(f"feature dimension must be a positive integer, got {d!r}")
    return FDINF_SPAN * FDINF_SUBSET_PER_DIM * d


def fd_infinity_sizes(n: int, d: int, num_points: int = FDINF_NUM_POINTS) -> np.ndarray:
    """The subset sizes FD-infinity fits: `num_points` evenly spaced from max(4 d, n // 10)
    to n (n // 10 is Chong & Forsyth's 5000 of 50,000), duplicates dropped.

    Refuses (UserError) with fewer than `fd_infinity_min_n(d)` samples.
    """
    if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 2:
        raise UserError(f"num_points must be an integer of at least 2, got {num_points!r}")
    need = fd_infinity_min_n(d)
    if n < need:
        raise UserError(
            f"FD-infinity needs at least {need} samples for {d}-dimensional features "
            f"(16 x d: subsets from 4 x d = {FDINF_SUBSET_PER_DIM * d} up to n), got n = {n}; "
            "generate more samples or use the fixed-n FD"
        )
    smallest = max(FDINF_SUBSET_PER_DIM * d, n // 10)
    return np.unique(np.linspace(smallest, n, num_points).astype(np.int64))


def fd_infinity(
    feats_fake: ArrayLike,
    mu_ref: ArrayLike,
    sigma_ref: ArrayLike,
    *,
    num_points: int = FDINF_NUM_POINTS,
    seed: int = 0,
) -> float:
    """FD extrapolated to infinitely many fake samples (Chong & Forsyth 2020).

    FD is computed on seeded random subsets (without replacement) of the sizes
    `fd_infinity_sizes(n, d, num_points)`, fitted linearly against 1/size, and the fit is
    evaluated at 1/size = 0. The reference statistics are taken as exact. Refuses
    (UserError) with fewer than `fd_infinity_min_n(d)` = 16 d samples.
    """
    x = as_features(feats_fake, "fake features")
    n, d = x.shape
    mu_ref, sigma_ref = _stats(mu_ref, sigma_ref, "reference")
    if mu_ref.size != d:
        raise UserError(f"mismatched feature dimensions: fake {d} vs reference {mu_ref.size}")
    sizes = fd_infinity_sizes(n, d, num_points)
    chol = _cholesky(sigma_ref)
    factor, lower = (chol, True) if chol is not None else (_range_root(sigma_ref), False)
    tr_ref = float(np.trace(sigma_ref))
    rng = np.random.default_rng(seed)
    fds = []
    for size in sizes:
        # Sorted indices gather rows in memory order; the statistics don't depend on order.
        mu, sigma = feature_stats(x[np.sort(rng.choice(n, size, replace=False))])
        tr_sqrt = _trace_sqrt_product(factor, lower, sigma)
        fds.append(_fd(mu - mu_ref, tr_ref + float(np.trace(sigma)), tr_sqrt))
    _, intercept = np.polyfit(1.0 / sizes, fds, 1)
    return float(intercept)


@register_metric(
    "fd",
    columns={
        "fid_": {"direction": "lower", "order": 0, "sweep": 1.1, "headline": True},
        "fd_": {"direction": "lower", "order": 1, "sweep": 1, "headline": True},
    },
    per_extractor=True,
    reliable={
        "per_dim": 2,
        "why": "below 2 x the feature dimension the covariance estimates are so rank-poor "
        "that FD is mostly its 1/n bias; compare only at equal n",
    },
)
def score_fd(ctx: ScoringContext, extractor: str) -> dict[str, float]:
    """Fréchet distance of the samples to the training split (FID in Inception features)."""
    fake, train = ctx.features(extractor, "fake"), ctx.features(extractor, "train")
    name = f"{ctx.fd_name(extractor)}_{ctx.column(extractor)}_n{ctx.n}_train"
    return {name: frechet_distance(fake, train)}


def _check_fdinf(n: int, d: int) -> None:
    fd_infinity_sizes(n, d)


@register_metric("fdinf", columns={"fdinf_": ("lower", 3)}, per_extractor=True, check=_check_fdinf)
def score_fdinf(ctx: ScoringContext, extractor: str) -> dict[str, float]:
    """FD extrapolated to infinitely many samples (Chong & Forsyth 2020)."""
    mu, sigma = feature_stats(ctx.features(extractor, "train"))
    value = fd_infinity(ctx.features(extractor, "fake"), mu, sigma)
    return {f"fdinf_{ctx.column(extractor)}_train": value}


register_alias("fid_inception", "fd", "inception")
