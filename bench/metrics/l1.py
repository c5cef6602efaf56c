"""Mean absolute error of each translation to its true target (paired tasks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bench.metrics import register_metric
from bench.metrics.psnr import paired_targets

if TYPE_CHECKING:
    from bench.scoring import ScoringContext


def mean_l1(x: np.ndarray, y: np.ndarray) -> float:
    """Mean |x - y| over all pixels of uint8 images, in [0, 1] units (pix2pix's L1 loss)."""
    return float(np.abs(x.astype(np.float64) - y.astype(np.float64)).mean() / 255.0)


@register_metric("l1", columns={"l1": ("lower", 31)}, needs={"images", "translation", "pairs"})
def score_l1(ctx: ScoringContext) -> dict[str, float]:
    """Mean absolute pixel error (in [0, 1] units) of each translation to its true target."""
    return {"l1": mean_l1(ctx.fake.numpy(), paired_targets(ctx))}
