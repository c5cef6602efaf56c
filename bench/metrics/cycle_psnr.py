"""cycle_psnr: how well a cycle model (CycleGAN) translates its translations back to their
sources, A -> B -> A, in PSNR (bench.metrics.psnr)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bench.metrics import register_metric
from bench.metrics.psnr import psnr_per_image
from bench.samples import check_samples
from bench.translation import source

if TYPE_CHECKING:
    from bench.scoring import ScoringContext


@register_metric(
    "cycle_psnr",
    columns={"cycle_psnr": ("higher", 36)},
    needs={"images", "translation", "model"},
)
def score_cycle_psnr(ctx: ScoringContext) -> dict[str, float]:
    """Mean PSNR of translate_back(translation) to the source; no column for models that do
    not translate back."""
    import torch

    back_of = getattr(ctx.model, "translate_back", None)
    if back_of is None:
        return {}
    src = source(ctx.data)
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        back = back_of(ctx.fake.clone(), generator=g, batch_size=ctx.batch_size)
    back = check_samples(back, src, ctx.n).numpy()
    value = psnr_per_image(back, src.test.x[ctx.source_rows].numpy()).mean()
    return {"cycle_psnr": float(np.asarray(value))}
