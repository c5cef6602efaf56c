"""sFID (Nash et al. 2021): the Fréchet distance between the Gaussians fitted to spatial
Inception features, 7 x 17 x 17 = 2023 dimensions of `mixed_6/conv`
(bench.features.inception_spatial), as openai/guided-diffusion's evaluator defines it. It
weighs spatial structure that pool3's averaging discards."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.metrics import register_metric
from bench.metrics.fd import frechet_distance

if TYPE_CHECKING:
    from bench.scoring import ScoringContext

EXTRACTOR = "inception_spatial"


@register_metric(
    "sfid_inception",
    columns={"sfid_": ("lower", 2)},
    needs={"images"},
    also=("inception_spatial",),
    reliable={
        "per_dim": 2,
        "why": "below 2 x the feature dimension the covariance estimates are so rank-poor "
        "that FD is mostly its 1/n bias; compare only at equal n",
    },
)
def score_sfid(ctx: ScoringContext) -> dict[str, float]:
    """sFID: FD of the samples to the training split in the first 7 channels of Inception's
    mixed_6/conv (2023-d; guided-diffusion's evaluator), clean-fid resizing."""
    fake, train = ctx.features(EXTRACTOR, "fake"), ctx.features(EXTRACTOR, "train")
    return {f"sfid_inception_clean_n{ctx.n}_train": frechet_distance(fake, train)}
