"""Per-sample scores: which generated images are bad, not only how bad the set is.

- Realism score (Kynkäänniemi et al. 2019, section 5): for a sample's features f,
  max over real features r of NND_k(r) / (|f - r| + eps), k = 3, on the real manifold
  pruned as the paper prunes it: the half of the real hyperspheres with the largest radii
  is dropped (radius set to 0, as the authors' code does with `clamp_to_percentile=50`), so
  a few outliers' large balls do not make everything look real. Above 1 a sample lies
  inside some kept real sphere. The authors' code (and guided-diffusion's copy of it)
  works with squared distances, so its score is the square of this one; the order of the
  samples is the same. The real set is an equally sized training subset, as for PRDC.
- Nearest-training distance: each sample's Euclidean distance in pixel space ([0, 1]) to
  its nearest image of the whole training split, and that image's index (ties: the lowest).

Stored per job as the artifact per_sample.json, not as columns; the report draws a panel
from them (bench.report.per_sample).
"""

from __future__ import annotations

import numpy as np
import torch

from bench.metrics import register_metric
from bench.metrics.distances import ArrayLike, check_k, distance_tiles, nearest, points
from bench.scoring import ScoringContext, equal_size_subset

K = 3
PRUNE_PERCENTILE = 50
EPS = 1e-5  # the authors' code's, against a division by zero for an exact copy


def realism_scores(real: ArrayLike, fake: ArrayLike, *, k: int = K) -> np.ndarray:
    """float64 (n_fake,) realism score of each fake feature vector against `real`."""
    r, f = points(real, "real features"), points(fake, "fake features")
    check_k(k, r.n, "real features", exclude_self=True)
    radii = nearest(r, r, k, exclude_self=True)[0][:, k - 1].double()
    limit = torch.quantile(radii, PRUNE_PERCENTILE / 100)
    radii = torch.where(radii > limit, torch.zeros_like(radii), radii)
    score = torch.zeros(f.n, dtype=torch.float64, device=radii.device)
    for rows, cols, d in distance_tiles(r, f):
        ratio = radii[rows, None] / (d.double() + EPS)
        score[cols] = torch.maximum(score[cols], ratio.max(0).values)
    return score.cpu().numpy()


def nearest_training(fake: torch.Tensor, train: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(distance, index) of each uint8 sample's nearest training image, pixels in [0, 1]."""
    # On the integer pixel values the float64 distances are exact (a copy is at 0); scaled
    # to [0, 1] afterwards.
    flat = lambda x: x.reshape(len(x), -1).double()  # noqa: E731
    dist, idx = nearest(points(flat(fake), "samples"), points(flat(train), "training images"), 1)
    return dist[:, 0].cpu().numpy() / 255.0, idx[:, 0].cpu().numpy()


@register_metric(
    "per_sample", columns={}, needs={"images"}, per_extractor=True, artifacts=("per_sample",)
)
def score_per_sample(ctx: ScoringContext, extractor: str) -> dict[str, float]:
    """Per-sample realism score (k=3, pruned real manifold) and nearest-training distance
    (pixels), stored as the per_sample.json artifact with a report panel; no columns."""
    fake = ctx.features(extractor, "fake")
    real = equal_size_subset(ctx.features(extractor, "train"), len(fake))
    dist, idx = nearest_training(ctx.fake.cpu(), ctx.data.train.x)
    ctx.artifacts.setdefault("per_sample", {})[extractor] = {
        "realism": realism_scores(real, fake).tolist(),
        "realism_k": K,
        "nearest_train_distance_pixels": dist.tolist(),
        "nearest_train_index": idx.tolist(),
    }
    return {}
