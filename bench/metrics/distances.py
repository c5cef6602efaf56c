"""Chunked Euclidean distances and k-nearest-neighbour search, on the inputs' device.

Distances are computed as scikit-learn's `euclidean_distances` (which the prdc package
calls) computes them, so that k-NN metrics built on them match it, strict `<` and ties
included: the squared distance is (-2 x.y + |x|^2) + |y|^2 in float64, clamped at 0 and,
when both inputs are float32, rounded to float32 before a correctly rounded square root
(sklearn's float32 path upcasts, computes in float64 and stores float32); otherwise it
stays float64. float32 results are then sklearn's bit for bit (the float64 work hides the
BLAS's summation order); float64 ones agree to the last bit or two, so a float64 input
whose distances tie exactly in real arithmetic may break a tie differently from sklearn.

Work proceeds in (chunk x chunk) tiles: memory grows as a few times 8 * chunk^2 bytes
plus 16 * chunk * d, never as n^2, and within-set neighbours compute each pair once.

Neighbours are ordered by (distance, index): of equally distant points the lowest index
comes first, so k-NN results do not depend on the tiling. That holds exactly when the
distances themselves do not: for integer-valued features (exact in float64) and, in
practice, for float32 ones. Real-valued float64 distances can differ in the last bit
between tile shapes (the BLAS sums in a shape-dependent order), so a tie that is exact in
real arithmetic may still split differently at another chunk size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from bench.errors import UserError

ArrayLike = np.ndarray | torch.Tensor

DEFAULT_CHUNK = 2048


@dataclass(frozen=True)
class Points:
    """A validated (n, d) point set with its float64 squared norms."""

    x: torch.Tensor
    sq_norms: torch.Tensor

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def dim(self) -> int:
        return self.x.shape[1]

    def subset(self, index: torch.Tensor) -> Points:
        return Points(self.x[index], self.sq_norms[index])


def as_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    """`x` as a 2-D real torch tensor (no copy when possible), or UserError."""
    if isinstance(x, np.ndarray):
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise UserError(f"{name} must hold real numbers, got dtype {x.dtype}")
        if not x.flags.writeable:
            x = x.copy()
        x = torch.from_numpy(x)
    elif not isinstance(x, torch.Tensor):
        raise UserError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    if x.dtype == torch.bool or x.is_complex():
        raise UserError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.ndim != 2:
        raise UserError(f"{name} must be 2-D (n, features), got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise UserError(f"{name} is empty: shape {tuple(x.shape)}")
    return x.detach()


def points(x: ArrayLike, name: str, *, chunk: int = DEFAULT_CHUNK) -> Points:
    """Validate `x` (2-D, finite) and precompute its squared norms, chunk by chunk."""
    t = as_tensor(x, name)
    _check_chunk(chunk)
    norms = []
    for start in range(0, t.shape[0], chunk):
        block = t[start : start + chunk]
        if not torch.isfinite(block).all():
            raise UserError(f"{name} contains NaN or infinite values")
        block = block.to(torch.float64)
        norms.append((block * block).sum(1))
    return Points(t, torch.cat(norms))


def check_same_space(a: Points, b: Points, names: tuple[str, str]) -> None:
    if a.dim != b.dim:
        raise UserError(
            f"{names[0]} has {a.dim} features but {names[1]} has {b.dim}; they must match"
        )
    if a.x.device != b.x.device:
        raise UserError(f"{names[0]} is on {a.x.device} but {names[1]} is on {b.x.device}")


def check_k(k: int, n: int, what: str, *, exclude_self: bool = False) -> None:
    """k must be a positive int, and `what` (n samples) must hold k neighbours."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UserError(f"k must be a positive integer, got {k!r}")
    needed = k + exclude_self
    if n < needed:
        why = " (a point is not its own neighbour)" if exclude_self else ""
        raise UserError(f"{what} has {n} samples; k={k} neighbours need at least {needed}{why}")


def result_dtype(a: Points, b: Points) -> torch.dtype:
    """float32 when both sets are float32 (sklearn's rule), else float64."""
    both32 = a.x.dtype == torch.float32 and b.x.dtype == torch.float32
    return torch.float32 if both32 else torch.float64


def distance_tiles(
    a: Points, b: Points, *, chunk: int = DEFAULT_CHUNK, upper: bool = False
) -> Iterator[tuple[slice, slice, torch.Tensor]]:
    """Yield (rows, cols, D[rows, cols]) tiles covering the a-by-b distance matrix.

    With `upper` (a and b the same set) only tiles on or above the diagonal are yielded.
    """
    _check_chunk(chunk)
    dtype = result_dtype(a, b)
    for r0 in range(0, a.n, chunk):
        rows = slice(r0, min(r0 + chunk, a.n))
        xa = a.x[rows].to(torch.float64)
        for c0 in range(r0 if upper else 0, b.n, chunk):
            cols = slice(c0, min(c0 + chunk, b.n))
            g = xa @ b.x[cols].to(torch.float64).T
            # Same operation order as sklearn: (-2 x.y + |x|^2) + |y|^2.
            g.mul_(-2).add_(a.sq_norms[rows, None]).add_(b.sq_norms[None, cols])
            yield rows, cols, _sqrt_(g.to(dtype).clamp_(min=0))


def knn(
    query: ArrayLike,
    ref: ArrayLike,
    k: int,
    *,
    exclude_self: bool = False,
    chunk: int = DEFAULT_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances (n_query, k), ascending, and indices into `ref` of each query's k nearest
    (equal distances: lowest index first).

    `exclude_self` treats query[i] and ref[i] as the same point and skips that pair (the
    two must have the same length). Passing the same object as query and ref computes
    each within-set distance once (half the work).
    """
    q = points(query, "query", chunk=chunk)
    r = q if ref is query else points(ref, "reference", chunk=chunk)
    check_same_space(q, r, ("query", "reference"))
    return nearest(q, r, k, exclude_self=exclude_self, chunk=chunk)


def kth_radii(x: ArrayLike, k: int, *, chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour in the same set, not itself."""
    p = points(x, "points", chunk=chunk)
    return nearest(p, p, k, exclude_self=True, chunk=chunk)[0][:, k - 1]


def nearest(
    q: Points, r: Points, k: int, *, exclude_self: bool = False, chunk: int = DEFAULT_CHUNK
) -> tuple[torch.Tensor, torch.Tensor]:
    """`knn` on validated point sets; `q is r` takes the symmetric (half-work) path."""
    if exclude_self and q.n != r.n:
        raise UserError(
            f"exclude_self needs query and reference of equal length, got {q.n} and {r.n}"
        )
    check_k(k, r.n, "the reference set", exclude_self=exclude_self)
    symmetric = q is r
    vals = torch.full((q.n, k), torch.inf, dtype=result_dtype(q, r), device=q.x.device)
    idx = torch.full((q.n, k), -1, dtype=torch.int64, device=q.x.device)
    for rows, cols, d in distance_tiles(q, r, chunk=chunk, upper=symmetric):
        if exclude_self:
            _mask_self(d, rows, cols)
        _merge(vals, idx, rows, d, cols.start)
        if symmetric and cols.start != rows.start:
            _merge(vals, idx, cols, d.T, rows.start)
    return vals, idx


def _merge(
    vals: torch.Tensor, idx: torch.Tensor, rows: slice, d: torch.Tensor, offset: int
) -> None:
    """Fold the k smallest entries of each row of tile `d` into the running (vals, idx),
    ties broken by the lowest index, so the result does not depend on the tiling."""
    k = vals.shape[1]
    tile_vals, tile_idx = _k_smallest(d, k)
    all_vals = torch.cat([vals[rows], tile_vals], dim=1)
    all_idx = torch.cat([idx[rows], tile_idx + offset], dim=1)
    # Order by (distance, index): sort by index, then stably by distance.
    by_idx = all_idx.argsort(dim=1, stable=True)
    all_vals, all_idx = all_vals.gather(1, by_idx), all_idx.gather(1, by_idx)
    all_vals, by_val = all_vals.sort(dim=1, stable=True)
    vals[rows], idx[rows] = all_vals[:, :k], all_idx.gather(1, by_val[:, :k])


def _k_smallest(d: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k smallest entries of each row of `d` and their column indices, of entries equal
    to the k-th smallest value the lowest-indexed (topk picks among them arbitrarily)."""
    if d.shape[1] <= k:
        return d, torch.arange(d.shape[1], device=d.device).expand(d.shape[0], -1)
    # One more than needed shows where ties straddle the cut: rows whose (k+1)-th smallest
    # equals their k-th. Only those are redone, keeping every entry below the k-th value and
    # the first ones equal to it.
    vals, idx = d.topk(k + 1, dim=1, largest=False)
    crowded = (vals[:, k - 1] == vals[:, k]).nonzero()[:, 0]
    vals, idx = vals[:, :k], idx[:, :k]
    if crowded.numel():
        sub, kth = d[crowded], vals[crowded, k - 1 :]
        below, tied = sub < kth, sub == kth
        need = k - below.sum(1, keepdim=True)
        cols = (below | (tied & (tied.cumsum(1) <= need))).nonzero()[:, 1].view(-1, k)
        vals[crowded], idx[crowded] = sub.gather(1, cols), cols
    return vals, idx


def _mask_self(d: torch.Tensor, rows: slice, cols: slice) -> None:
    lo, hi = max(rows.start, cols.start), min(rows.stop, cols.stop)
    if lo < hi:
        both = torch.arange(lo, hi, device=d.device)
        d[both - rows.start, both - cols.start] = torch.inf


def _sqrt_(t: torch.Tensor) -> torch.Tensor:
    # torch's CPU sqrt (SLEEF) is not correctly rounded: about 1% of float64 and 17% of
    # float32 results are 1 ulp off numpy's, which flips strict `<` ties against sklearn.
    # numpy's is IEEE-exact, as is CUDA's.
    if t.device.type == "cpu":
        np.sqrt(t.numpy(), out=t.numpy())
        return t
    return t.sqrt_()


def _check_chunk(chunk: int) -> None:
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise UserError(f"chunk must be a positive integer, got {chunk!r}")
