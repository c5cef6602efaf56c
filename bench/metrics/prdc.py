"""Precision, recall, density and coverage (Kynkäänniemi et al. 2019; Naeem et al. 2020).

Matches `prdc.compute_prdc` exactly on the same inputs and k: same distances (see
distances.py), same strict `<` against k-th neighbour radii that exclude the point
itself, same float arithmetic for the averages. Distances are tiled, so 50,000 x 50,000
at d = 2048 needs a few hundred MB, and within-set radii are computed once per pair.
"""

from __future__ import annotations

import torch

from bench.metrics import register_metric
from bench.metrics.distances import (
    DEFAULT_CHUNK,
    ArrayLike,
    check_k,
    check_same_space,
    distance_tiles,
    nearest,
    points,
)
from bench.scoring import ScoringContext, equal_size_subset


def prdc(
    real: ArrayLike, fake: ArrayLike, *, nearest_k: int, chunk: int = DEFAULT_CHUNK
) -> dict[str, float]:
    """precision, recall, density, coverage with one k, as `prdc.compute_prdc`."""
    return prdc_metrics(real, fake, k_pr=nearest_k, k_dc=nearest_k, chunk=chunk)


def prdc_metrics(
    real: ArrayLike,
    fake: ArrayLike,
    *,
    k_pr: int = 3,
    k_dc: int = 5,
    chunk: int = DEFAULT_CHUNK,
) -> dict[str, float]:
    """precision and recall with k = k_pr, density and coverage with k = k_dc, in one pass.

    Returns {"precision", "recall", "density", "coverage"}; each equals what
    `prdc.compute_prdc(real, fake, k)` reports for that metric at its own k.
    """
    r = points(real, "real features", chunk=chunk)
    f = points(fake, "fake features", chunk=chunk)
    check_same_space(r, f, ("real features", "fake features"))
    for k in (k_pr, k_dc):
        check_k(k, r.n, "real features", exclude_self=True)
    check_k(k_pr, f.n, "fake features", exclude_self=True)

    real_knn = nearest(r, r, max(k_pr, k_dc), exclude_self=True, chunk=chunk)[0]
    real_pr, real_dc = real_knn[:, k_pr - 1], real_knn[:, k_dc - 1]
    fake_pr = nearest(f, f, k_pr, exclude_self=True, chunk=chunk)[0][:, k_pr - 1]

    device = r.x.device
    precise = torch.zeros(f.n, dtype=torch.bool, device=device)
    recalled = torch.zeros(r.n, dtype=torch.bool, device=device)
    covered = torch.zeros(r.n, dtype=torch.bool, device=device)
    balls_per_fake = torch.zeros(f.n, dtype=torch.int64, device=device)
    for rows, cols, d in distance_tiles(r, f, chunk=chunk):
        in_real_pr = d < real_pr[rows, None]
        in_real_dc = in_real_pr if k_dc == k_pr else d < real_dc[rows, None]
        precise[cols] |= in_real_pr.any(0)
        recalled[rows] |= (d < fake_pr[None, cols]).any(1)
        covered[rows] |= in_real_dc.any(1)
        balls_per_fake[cols] += in_real_dc.sum(0)

    return {
        "precision": precise.sum().item() / f.n,
        "recall": recalled.sum().item() / r.n,
        # Same two roundings as the prdc package: (1 / k) * mean(count).
        "density": (1.0 / k_dc) * (balls_per_fake.sum().item() / f.n),
        "coverage": covered.sum().item() / r.n,
    }


@register_metric(
    "prdc",
    columns={
        "precision_": {"direction": "higher", "order": 5, "sweep": 4, "headline": True},
        "recall_": {"direction": "higher", "order": 6, "sweep": 5, "headline": True},
        "density_": ("higher", 7),
        "coverage_": ("higher", 8),
    },
    per_extractor=True,
    reliable={
        "min_n": 10000,
        "why": "Naeem et al. evaluate with 10,000 real and 10,000 fake samples (the prdc "
        "package's example); with fewer, the k-NN balls are larger and the values vary more "
        "between draws",
    },
)
def score_prdc(ctx: ScoringContext, extractor: str) -> dict[str, float]:
    """Precision/recall (k=3), density/coverage (k=5) against an equally sized training
    subset."""
    fake = ctx.features(extractor, "fake")
    real = equal_size_subset(ctx.features(extractor, "train"), len(fake))
    m = prdc_metrics(real, fake, k_pr=3, k_dc=5)
    col = ctx.column(extractor)
    return {
        f"precision_{col}_k3": m["precision"],
        f"recall_{col}_k3": m["recall"],
        f"density_{col}_k5": m["density"],
        f"coverage_{col}_k5": m["coverage"],
    }
