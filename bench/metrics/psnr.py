"""Peak signal-to-noise ratio of each translation to its true target (paired tasks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bench.metrics import register_metric

if TYPE_CHECKING:
    from bench.scoring import ScoringContext

PSNR_CAP_DB = 100.0  # an image equal to its target: log10 of a zero error is +inf


def psnr_per_image(x: np.ndarray, y: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """(n,) PSNR in dB of uint8 NCHW images x against y, each over all its pixels and
    channels, as skimage.metrics.peak_signal_noise_ratio(y[i], x[i], data_range=255); an
    exact match is PSNR_CAP_DB."""
    diff = x.astype(np.float64) - y.astype(np.float64)
    mse = (diff**2).reshape(len(x), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        db = 10 * np.log10(data_range**2 / mse)
    return np.minimum(db, PSNR_CAP_DB)


def paired_targets(ctx: ScoringContext) -> np.ndarray:
    """The true target of each translation: target test image i for source test image i."""
    return ctx.data.test.x[ctx.source_rows].numpy()


@register_metric("psnr", columns={"psnr": ("higher", 30)}, needs={"images", "translation", "pairs"})
def score_psnr(ctx: ScoringContext) -> dict[str, float]:
    """Mean PSNR (dB, data range 255, capped at 100) of each translation to its true target."""
    return {"psnr": float(psnr_per_image(ctx.fake.numpy(), paired_targets(ctx)).mean())}
