"""CMMD (Jayasumana et al. 2024, "Rethinking FID"): MMD^2 between two embedding sets.

The estimator of google-research/cmmd distance.py (commit 4c42994): the biased
(minimum-variance) MMD^2 of Gretton et al. 2012 Eq. 5, every pair including i = j, with a
Gaussian RBF kernel exp(-|x - y|^2 / (2 sigma^2)), sigma = 10, reported x1000. The squared
distances are formed as |x|^2 + |y|^2 - 2 x.y, exactly as there. cmmd computes in float32 on
the accelerator; this computes in float64, in row tiles so that 50,000 x 50,000 fits in a few MB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bench.errors import UserError
from bench.features.weights_files import CLIP_EXTRACTOR
from bench.metrics import register_metric
from bench.metrics.fd import as_features, check_finite
from bench.scoring import ScoringContext, equal_size_subset

if TYPE_CHECKING:
    from bench.metrics.fd import ArrayLike

SIGMA = 10.0
SCALE = 1000.0
# Kernel entries per tile: 32 MB of float64.
_TILE_ELEMENTS = 1 << 22


def cmmd(x: ArrayLike, y: ArrayLike, *, sigma: float = SIGMA, scale: float = SCALE) -> float:
    """scale * MMD^2(x, y) with a Gaussian RBF kernel of bandwidth `sigma`; x (n, d), y (m, d).

    For CMMD, x and y are L2-normalized CLIP ViT-L/14@336px image embeddings
    (bench.features.clip); any features work."""
    a = as_features(x, "first feature set").astype(np.float64, copy=False)
    b = as_features(y, "second feature set").astype(np.float64, copy=False)
    if a.shape[1] != b.shape[1]:
        raise UserError(
            f"mismatched feature dimensions: {a.shape[1]} and {b.shape[1]}; "
            "both sets must come from the same extractor"
        )
    if not sigma > 0:
        raise UserError(f"the CMMD kernel bandwidth sigma must be positive, got {sigma}")
    check_finite(a, "first feature set")
    check_finite(b, "second feature set")
    gamma = 1.0 / (2.0 * sigma**2)
    k_xx = _mean_rbf(a, a, gamma)
    k_yy = _mean_rbf(b, b, gamma)
    k_xy = _mean_rbf(a, b, gamma)
    return float(scale * (k_xx + k_yy - 2.0 * k_xy))


def _mean_rbf(a: np.ndarray, b: np.ndarray, gamma: float) -> float:
    """Mean over all (i, j) of exp(-gamma * (|a_i|^2 + |b_j|^2 - 2 a_i.b_j))."""
    sq_a = np.einsum("ij,ij->i", a, a)
    sq_b = np.einsum("ij,ij->i", b, b)
    rows = max(1, _TILE_ELEMENTS // len(b))
    total = 0.0
    for i in range(0, len(a), rows):
        d2 = sq_a[i : i + rows, None] + sq_b[None, :] - 2.0 * (a[i : i + rows] @ b.T)
        total += np.exp(-gamma * d2).sum()
    return total / (len(a) * len(b))


@register_metric(
    "cmmd", columns={"cmmd_": ("lower", 1.5)}, needs={"images"}, also=("clip_vitl14_336",)
)
def score_cmmd(ctx: ScoringContext) -> dict[str, float]:
    """CMMD: MMD² in CLIP ViT-L/14@336px embeddings against an equally sized training
    subset, Gaussian RBF σ = 10, ×1000 (Jayasumana et al. 2024)."""
    extractor = CLIP_EXTRACTOR
    fake = ctx.features(extractor, "fake")
    real = equal_size_subset(ctx.features(extractor, "train"), len(fake))
    return {f"cmmd_{ctx.column(extractor)}_n{ctx.n}_train": cmmd(fake, real)}
