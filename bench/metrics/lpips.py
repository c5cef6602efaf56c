"""LPIPS (v0.1, VGG16; Zhang et al. 2018) of each translation to its true target (paired
tasks), the paired perceptual distance of the pix2pix follow-ups: bench.features.lpips_vgg16,
on the uint8 images mapped to [-1, 1], digits upsampled to 64x64, in float32 as the lpips
package computes it. Needs the VGG16 weights file (a suite's `weights: {lpips_vgg16: PATH}`,
eval's --weights), checked before anything trains."""

from __future__ import annotations

import numpy as np
import torch

from bench.metrics import register_metric
from bench.metrics.psnr import paired_targets
from bench.scoring import ScoringContext

BATCH = 64  # image pairs per VGG16 pass


def mean_lpips(distance, x: torch.Tensor, y: torch.Tensor, batch_size: int = BATCH) -> float:
    """The mean of `distance` (two uint8 NCHW batches -> (n,) LPIPS) over pairs (x[i], y[i])."""
    total = 0.0
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            total += float(distance(x[i : i + batch_size], y[i : i + batch_size]).double().sum())
    return total / len(x)


@register_metric(
    "lpips",
    columns={"lpips": ("lower", 32.5)},
    needs={"images", "translation", "pairs"},
    also=("lpips_vgg16",),
)
def score_lpips(ctx: ScoringContext) -> dict[str, float]:
    """Mean LPIPS-VGG16 of each translation to its true target (the VGG16 weights file from
    `weights: {lpips_vgg16: PATH}`)."""
    from bench.features.lpips_vgg16 import load_lpips

    weights = ctx.weights.get("lpips_vgg16")
    lp = load_lpips(None if weights is None else str(weights), str(ctx.device))
    ctx.provenance.update(lp.provenance())
    targets = torch.from_numpy(np.ascontiguousarray(paired_targets(ctx)))
    return {"lpips": mean_lpips(lp.distance, ctx.fake, targets)}
