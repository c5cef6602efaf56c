"""Kernel distance (KID on Inception features): unbiased MMD^2 with a cubic polynomial kernel.

k(x, y) = (x.y / d + 1)^3, averaged over random equal-size subsets of both sets. Kernel
values and their sums are float64; the dot products are float64 too, except for sets over
FULL_KERNEL_MAX_ROWS rows with d >= FLOAT32_GRAM_MIN_DIM, where each subset's Gram matrices
are float32 matmuls of the features less their common mean (the mean's share of x.y is
added in float64). Subsets are drawn exactly as torch-fidelity draws them, so the same seed
gives the same subsets and the same value as its `rng_seed`; they are computed side by side,
one per BLAS thread (`_each_subset`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from bench.errors import UserError
from bench.metrics import register_metric
from bench.metrics.fd import as_features, check_finite, to_numpy

if TYPE_CHECKING:
    from bench.metrics.fd import ArrayLike
    from bench.scoring import ScoringContext


def kid_subset_indices(
    n_a: int, n_b: int, *, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (num_subsets, m) into each set, m = min(subset_size, n_a, n_b).

    Each subset is drawn without replacement; draws alternate a, b per subset from one
    np.random.RandomState(seed), as in torch-fidelity's KID.
    """
    if num_subsets < 1:
        raise UserError(f"num_subsets must be at least 1, got {num_subsets}")
    m = min(subset_size, n_a, n_b)
    if m < 2:
        raise UserError(f"KID needs subsets of at least 2 samples, got {m}")
    rng = np.random.RandomState(seed)
    idx_a = np.empty((num_subsets, m), dtype=np.int64)
    idx_b = np.empty((num_subsets, m), dtype=np.int64)
    for i in range(num_subsets):
        idx_a[i] = rng.choice(n_a, m, replace=False)
        idx_b[i] = rng.choice(n_b, m, replace=False)
    return idx_a, idx_b


def _features(feats: ArrayLike, name: str) -> np.ndarray:
    arr = as_features(feats, name)
    check_finite(arr, name)
    return arr


def _indices(idx: ArrayLike, n: int, name: str) -> np.ndarray:
    arr = to_numpy(idx, name, 2)
    if not np.issubdtype(arr.dtype, np.integer):
        raise UserError(f"{name} must hold integer row indices, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise UserError(f"{name} must index rows 0..{n - 1}")
    return arr


# Up to this many rows per set, the three float64 kernel matrices are computed once and
# every subset's sums are read from them (3 x 200 MB at 5,000 rows); beyond, per subset.
FULL_KERNEL_MAX_ROWS = 5000


def _cubic_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    k = x @ y.T
    k /= x.shape[1]
    k += 1.0
    return np.power(k, 3, out=k)


# From this feature dimension on, the per-subset Gram matrices are float32 matmuls (twice
# float64's BLAS rate; the matmuls are nearly all of the time there). Below it float32 would
# gain little time. Centring keeps the float32 partial sums small for non-negative features
# (Inception, pixels); in our checks the float32 matmuls moved KID by under 1e-6 of its std
# across subsets (by 5e-10 relative at the speed benchmark's KID of 0.03).
FLOAT32_GRAM_MIN_DIM = 256
# Rows handled at a time in float64 (1 MB of features at d = 2,048, 512 KB of a Gram
# matrix with 1,000 columns), so that each block stays in cache across its passes.
ROWS_PER_BLOCK = 64


def _centred(
    a: np.ndarray, b: np.ndarray, dtype: type[np.floating]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each set as x' = (x - c) / sqrt(d) in dtype, c the mean of both sets, and per row the
    float64 h = ((x - c).c + c.c / 2) / d + 1/2, so that x.y / d + 1 = x'.y' + h_x + h_y.
    Neither set is copied to float64 whole."""
    d = a.shape[1]
    c = (a.sum(axis=0, dtype=np.float64) + b.sum(axis=0, dtype=np.float64)) / (len(a) + len(b))
    half_cc = float(c @ c) / 2
    out = []
    for x in (a, b):
        shifted, h = np.empty(x.shape, dtype), np.empty(len(x))
        for start in range(0, len(x), ROWS_PER_BLOCK):
            rows = slice(start, start + ROWS_PER_BLOCK)
            centred = x[rows] - c
            np.multiply(centred, 1 / np.sqrt(d), out=shifted[rows], dtype=np.float64)
            h[rows] = centred @ c
        out += [shifted, (h + half_cc) / d + 0.5]
    return out[0], out[1], out[2], out[3]


def _cube_sum(
    gram: np.ndarray, h_rows: np.ndarray, h_cols: np.ndarray, *, symmetric: bool = False
) -> float:
    """Sum of (gram + h_rows[:, None] + h_cols)^3 over the whole matrix, in float64. Of a
    symmetric one (h_rows is h_cols) only the blocks of rows from their diagonal on are read."""
    buffer = np.empty(min(ROWS_PER_BLOCK, len(gram)) * gram.shape[1])
    total = 0.0
    for start in range(0, len(gram), ROWS_PER_BLOCK):
        rows = slice(start, start + ROWS_PER_BLOCK)
        cols = slice(start if symmetric else 0, None)
        block = gram[rows, cols]
        v = buffer[: block.size].reshape(block.shape)
        np.add(block, h_rows[rows, None], out=v, dtype=np.float64)
        v += h_cols[cols]
        cubes = float(np.einsum("ij,ij,ij->", v, v, v))
        if symmetric:  # the part right of the diagonal square stands for its mirror too
            square = v[:, : len(v)]
            cubes = 2 * cubes - float(np.einsum("ij,ij,ij->", square, square, square))
        total += cubes
    return total


def _mmd2_centred(x: np.ndarray, hx: np.ndarray, y: np.ndarray, hy: np.ndarray) -> float:
    """Unbiased MMD^2 of one subset pair, from _centred's rows and offsets."""
    m = len(x)

    def off_diagonal_sum(z: np.ndarray, h: np.ndarray) -> float:
        gram = z @ z.T  # numpy runs syrk for this
        diagonal = np.diagonal(gram) + 2 * h
        total = _cube_sum(gram, h, h, symmetric=True)
        return total - float(np.dot(diagonal * diagonal, diagonal))

    xx, yy = off_diagonal_sum(x, hx), off_diagonal_sum(y, hy)
    return (xx + yy) / (m * (m - 1)) - 2.0 * _cube_sum(x @ y.T, hx, hy) / (m * m)


def _mmd2_from_kernels(
    kaa: np.ndarray, kbb: np.ndarray, kab: np.ndarray, ia: np.ndarray, ib: np.ndarray
) -> float:
    def block_sum(k: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> float:
        if len(rows) == k.shape[0] and len(cols) == k.shape[1]:
            return float(k.sum())  # the subset is the whole set, permuted
        return float(k[np.ix_(rows, cols)].sum())

    m = len(ia)
    xx = block_sum(kaa, ia, ia) - float(kaa[ia, ia].sum())
    yy = block_sum(kbb, ib, ib) - float(kbb[ib, ib].sum())
    return (xx + yy) / (m * (m - 1)) - 2.0 * block_sum(kab, ia, ib) / (m * m)


def _blas_threads() -> int:
    return max(
        (lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"), default=1
    )


def _each_subset(
    mmd2: Callable[[np.ndarray, np.ndarray], float], idx_a: np.ndarray, idx_b: np.ndarray
) -> np.ndarray:
    """mmd2 of every subset pair, in as many threads as BLAS may use, BLAS on one thread in
    each. Subsets side by side on one core each beat one at a time on all cores: their
    gathers and cube sums are one-core numpy that left the other cores idle, and one-thread
    matmuls need no synchronisation (2 cores, n = 10,000: 5.9 s -> 4.7 s). A subset's value is
    computed the same way whatever the thread count."""
    threads = _blas_threads()
    with threadpool_limits(1, user_api="blas"):
        if threads == 1:
            return np.array([mmd2(ia, ib) for ia, ib in zip(idx_a, idx_b, strict=True)])
        with ThreadPoolExecutor(threads) as pool:
            return np.array(list(pool.map(mmd2, idx_a, idx_b)))


def kid_from_subsets(
    feats_a: ArrayLike, feats_b: ArrayLike, idx_a: ArrayLike, idx_b: ArrayLike
) -> tuple[float, float]:
    """Mean and std (ddof=0) of the unbiased MMD^2 over the given subsets.

    idx_a and idx_b are (num_subsets, m) row indices into feats_a and feats_b.
    """
    a = _features(feats_a, "first features")
    b = _features(feats_b, "second features")
    if a.shape[1] != b.shape[1]:
        raise UserError(f"mismatched feature dimensions: {a.shape[1]} vs {b.shape[1]}")
    idx_a = _indices(idx_a, a.shape[0], "first subset indices")
    idx_b = _indices(idx_b, b.shape[0], "second subset indices")
    if idx_a.shape != idx_b.shape or idx_a.shape[0] < 1 or idx_a.shape[1] < 2:
        raise UserError(
            "subset indices must both have shape (num_subsets >= 1, subset_size >= 2), "
            f"got {idx_a.shape} and {idx_b.shape}"
        )
    if max(len(a), len(b)) <= FULL_KERNEL_MAX_ROWS:
        a64, b64 = a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)
        kaa, kbb, kab = _cubic_kernel(a64, a64), _cubic_kernel(b64, b64), _cubic_kernel(a64, b64)

        def mmd2(ia: np.ndarray, ib: np.ndarray) -> float:
            return _mmd2_from_kernels(kaa, kbb, kab, ia, ib)
    else:
        dtype = np.float32 if a.shape[1] >= FLOAT32_GRAM_MIN_DIM else np.float64
        ac, ha, bc, hb = _centred(a, b, dtype)

        def mmd2(ia: np.ndarray, ib: np.ndarray) -> float:
            return _mmd2_centred(ac[ia], ha[ia], bc[ib], hb[ib])

    mmds = _each_subset(mmd2, idx_a, idx_b)
    return float(mmds.mean()), float(mmds.std())


def kid(
    feats_a: ArrayLike,
    feats_b: ArrayLike,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID mean and std over `num_subsets` subsets of min(subset_size, n_a, n_b) rows."""
    a = _features(feats_a, "first features")
    b = _features(feats_b, "second features")
    idx_a, idx_b = kid_subset_indices(
        a.shape[0], b.shape[0], num_subsets=num_subsets, subset_size=subset_size, seed=seed
    )
    return kid_from_subsets(a, b, idx_a, idx_b)


@register_metric(
    "kid",
    columns={"kid_": ("lower", 4)},
    per_extractor=True,
    reliable={
        "min_n": 1000,
        "why": "the subsets shrink below the 1000 samples of Binkowski et al. and "
        "torch-fidelity, so KID is noisier and not comparable to published values",
    },
)
def score_kid(ctx: ScoringContext, extractor: str) -> dict[str, float]:
    """KID: unbiased MMD² with the cubic kernel, 100 subsets of min(1000, n), and its std."""
    mean, std = kid(ctx.features(extractor, "fake"), ctx.features(extractor, "train"))
    column = f"kid_{ctx.column(extractor)}_n{ctx.n}"
    return {column: mean, f"{column}_std": std}
