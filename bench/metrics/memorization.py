"""Memorization and nearest-neighbour overfitting of generated samples (PROTOCOLS.md).

All distances are Euclidean in whatever space the inputs live in (classifier or
Inception features, or flattened pixels); see distances.py.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from bench.errors import UserError
from bench.metrics import register_metric
from bench.metrics.distances import (
    DEFAULT_CHUNK,
    ArrayLike,
    Points,
    check_same_space,
    nearest,
    points,
)
from bench.scoring import ScoringContext

COPY_RATIO = 1 / 3  # Gu et al. 2023
CT_PCA_DIM = 64
CT_MIN_FAKE_PER_CELL = 20  # tau = 20 / m (Meehan et al. 2020; dgm-eval)


def nearest_training_indices(
    fake: ArrayLike, train: ArrayLike, k: int = 1, *, chunk: int = DEFAULT_CHUNK
) -> torch.Tensor:
    """(n_fake, k) indices of each generated sample's k nearest training samples, nearest
    first, equally near ones by lowest index (for the nearest-neighbour image grid)."""
    f = points(fake, "generated samples", chunk=chunk)
    t = points(train, "training samples", chunk=chunk)
    check_same_space(f, t, ("generated samples", "training samples"))
    return nearest(f, t, k, chunk=chunk)[1]


def memorization(
    train: ArrayLike,
    test: ArrayLike,
    fake: ArrayLike,
    *,
    seed: int = 0,
    ct_cells: int = 3,
    chunk: int = DEFAULT_CHUNK,
) -> dict[str, float]:
    """All memorization statistics of generated samples `fake` against `train`.

    Keys:
    - nn_fake_median, nn_test_median: median distance from each generated / held-out test
      sample to its nearest neighbour in a random training subset (seeded) of the test
      set's size; nn_ratio = nn_fake_median / nn_test_median (< 1: closer to the training
      data than unseen real data is).
    - copy_fraction: share of generated x with d(x, NN1) / d(x, NN2) < 1/3, NN1 and NN2 its
      two nearest training samples (Gu et al. 2023); an exact match (d = 0) is a copy.
    - authpct: percentage of generated x whose nearest training sample r has another
      training sample closer to r than x is (Alaa et al. 2022, as dgm-eval computes it);
      of equally near training samples, r is the lowest-indexed.
    - c_t: Meehan et al. 2020 data-copying statistic, as dgm-eval computes it: PCA of all
      sets to 64-d when d > 64 (fitted on train), k-means (`ct_cells` cells, 10 inits) on
      train; in each cell with more than 20 generated samples (fraction > 20/m), the
      Mann-Whitney U of generated vs test distances to the cell's nearest training sample,
      z-scored as (U - (n m / 2 - 0.5)) / sqrt(n m (n + m + 1) / 12); c_t is the mean of
      these z-scores weighted by each cell's share of test samples (nan when no cell
      qualifies). Strongly negative means copying; about 0 is ideal.
    """
    tr = points(train, "training samples", chunk=chunk)
    te = points(test, "test samples", chunk=chunk)
    fk = points(fake, "generated samples", chunk=chunk)
    check_same_space(tr, te, ("training samples", "test samples"))
    check_same_space(tr, fk, ("training samples", "generated samples"))
    if isinstance(ct_cells, bool) or not isinstance(ct_cells, int) or ct_cells < 1:
        raise UserError(f"ct_cells must be a positive integer, got {ct_cells!r}")
    if tr.n < max(2, ct_cells):
        raise UserError(
            f"memorization needs at least max(2, ct_cells={ct_cells}) training samples, got {tr.n}"
        )

    nn_dist, nn_idx = nearest(fk, tr, 2, chunk=chunk)
    out = _nn_gap(tr, te, fk, seed, chunk)
    out["copy_fraction"] = _copy_fraction(nn_dist)
    out["authpct"] = _authpct(tr, nn_dist[:, 0], nn_idx[:, 0], chunk)
    out["c_t"] = _c_t(tr.x, te.x, fk.x, ct_cells, seed, chunk)
    return out


def _nn_gap(tr: Points, te: Points, fk: Points, seed: int, chunk: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    subset = rng.choice(tr.n, size=min(tr.n, te.n), replace=False)
    ref = tr.subset(torch.as_tensor(subset, device=tr.x.device))
    fake_med = _median(nearest(fk, ref, 1, chunk=chunk)[0][:, 0])
    test_med = _median(nearest(te, ref, 1, chunk=chunk)[0][:, 0])
    return {
        "nn_fake_median": fake_med,
        "nn_test_median": test_med,
        "nn_ratio": fake_med / test_med if test_med > 0 else math.nan,
    }


def _copy_fraction(nn_dist: torch.Tensor) -> float:
    d1, d2 = nn_dist[:, 0], nn_dist[:, 1]
    copies = (d1 < COPY_RATIO * d2) | (d1 == 0)
    return copies.double().mean().item()


def _authpct(tr: Points, d1: torch.Tensor, nn1: torch.Tensor, chunk: int) -> float:
    # Only the training samples that are someone's nearest neighbour need their own
    # nearest (other) training neighbour; k=2 because the first is usually themselves.
    used, where = torch.unique(nn1, return_inverse=True)
    dist, idx = nearest(tr.subset(used), tr, 2, chunk=chunk)
    own_nn = torch.where(idx[:, 0] == used, dist[:, 1], dist[:, 0])
    authentic = own_nn[where] < d1
    return 100.0 * authentic.double().mean().item()


def _c_t(
    train: torch.Tensor,
    test: torch.Tensor,
    fake: torch.Tensor,
    cells: int,
    seed: int,
    chunk: int,
) -> float:
    from scipy.stats import mannwhitneyu  # imported where used: `genbench list` stays fast
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    tr, te, fk = (_to_numpy(x) for x in (train, test, fake))
    if tr.shape[1] > CT_PCA_DIM:
        pca = PCA(n_components=min(CT_PCA_DIM, tr.shape[0]), random_state=seed).fit(tr)
        tr, te, fk = pca.transform(tr), pca.transform(te), pca.transform(fk)
    # One thread: sklearn's OpenMP workers otherwise spin against torch's (k-means on 400
    # points took 5 s instead of 0.03 s on a busy 2-core machine).
    with threadpool_limits(1):
        kmeans = KMeans(n_clusters=cells, n_init=10, random_state=seed).fit(tr)
    cell_tr, cell_te, cell_fk = kmeans.labels_, kmeans.predict(te), kmeans.predict(fk)

    z_scores, weights = [], []
    for c in range(cells):
        q, p, t = fk[cell_fk == c], te[cell_te == c], tr[cell_tr == c]
        if len(q) <= CT_MIN_FAKE_PER_CELL or len(p) == 0:
            continue  # too few generated samples, or no test mass to weigh it by
        tp = points(t, "training cell", chunk=chunk)
        lq = nearest(points(q, "generated cell", chunk=chunk), tp, 1, chunk=chunk)[0][:, 0]
        lp = nearest(points(p, "test cell", chunk=chunk), tp, 1, chunk=chunk)[0][:, 0]
        u = mannwhitneyu(lq.numpy(), lp.numpy(), method="asymptotic").statistic
        m, n = len(q), len(p)
        z_scores.append((u - (n * m / 2 - 0.5)) / math.sqrt(n * m * (n + m + 1) / 12))
        weights.append(n / len(te))
    if not weights:
        return math.nan
    return float(np.dot(weights, z_scores) / np.sum(weights))


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    x = x.cpu()
    if not x.is_floating_point() or x.dtype in (torch.float16, torch.bfloat16):
        x = x.double()
    return x.numpy()


def _median(x: torch.Tensor) -> float:
    # numpy's median averages the two middle values; torch.median takes the lower one.
    return float(np.median(x.double().cpu().numpy()))


@register_metric(
    "memorization",
    columns={
        "copy_fraction_": ("lower", 13),
        "authpct_": ("higher", 14),
        "ct_": ("closer to 0", 15),
        "nn_gap_ratio_": ("closer to 1", 16),
    },
    per_extractor=True,
    also=("pixels",),
    artifacts={"nearest_neighbours"},
)
def score_memorization(ctx: ScoringContext, extractor: str) -> dict[str, float]:
    """Copy fraction, AuthPct, C_T and the NN distance gap (always also in pixels)."""
    m = memorization(
        ctx.features(extractor, "train"),
        ctx.features(extractor, "test"),
        ctx.features(extractor, "fake"),
    )
    col = ctx.column(extractor)
    return {
        f"copy_fraction_1/3_{col}": m["copy_fraction"],
        f"authpct_{col}": m["authpct"],
        f"ct_{col}": m["c_t"],
        f"nn_gap_ratio_{col}": m["nn_ratio"],
    }
