"""label_kept: does a translation keep its source's class? The FCN-score idea of pix2pix
(Isola et al. 2017) with the target domain's classifier that genbench ships."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bench.metrics import register_metric
from bench.translation import source

if TYPE_CHECKING:
    from bench.scoring import ScoringContext


@register_metric(
    "label_kept",
    columns={"label_kept": ("higher", 33)},
    needs={"images", "labels", "translation"},
)
def score_label_kept(ctx: ScoringContext) -> dict[str, float]:
    """Share of translations the target domain's classifier reads as their source's class."""
    from bench.errors import UserError

    labels = source(ctx.data).test.y
    if labels is None:
        raise UserError(f"metric 'label_kept' needs source labels; {ctx.data.name!r} has none")
    predicted = ctx.classifier_logits("fake").argmax(axis=1)
    return {"label_kept": float(np.mean(predicted == labels[ctx.source_rows].numpy()))}
