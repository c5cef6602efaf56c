"""Structural similarity (Wang et al. 2004) of each translation to its true target."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bench.metrics import register_metric
from bench.metrics.psnr import paired_targets

if TYPE_CHECKING:
    from bench.scoring import ScoringContext

# Wang et al.'s protocol, which torchmetrics' default and scikit-image's
# structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
# data_range=255) both compute: an 11x11 Gaussian window of sigma 1.5, K1 0.01, K2 0.03,
# averaged where the window fits the image (scikit-image's mean; torchmetrics' mean also
# takes the border, computed on reflect padding: on 28x28 images a different number).
SIGMA = 1.5
RADIUS = 5  # int(3.5 * SIGMA + 0.5): scikit-image's truncation, torchmetrics' 11 taps
K1, K2 = 0.01, 0.03


def _window() -> np.ndarray:
    t = np.arange(-RADIUS, RADIUS + 1, dtype=np.float64)
    w = np.exp(-0.5 * (t / SIGMA) ** 2)
    return w / w.sum()


def _filter_valid(x: np.ndarray) -> np.ndarray:
    """The separable Gaussian window over the last two axes, valid positions only (the
    border that both libraries crop)."""
    w = _window()
    rows = sum(w[i] * x[..., i : x.shape[-2] - 2 * RADIUS + i, :] for i in range(len(w)))
    return sum(w[i] * rows[..., i : x.shape[-1] - 2 * RADIUS + i] for i in range(len(w)))


def ssim_per_image(x: np.ndarray, y: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """(n,) SSIM of NCHW images x against y: the SSIM map over valid window positions,
    averaged over them and the channels. Images need at least 11x11 pixels."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    mx, my = _filter_valid(x), _filter_valid(y)
    vx = _filter_valid(x * x) - mx * mx
    vy = _filter_valid(y * y) - my * my
    cxy = _filter_valid(x * y) - mx * my
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return ssim_map.reshape(len(x), -1).mean(axis=1)


@register_metric("ssim", columns={"ssim": ("higher", 32)}, needs={"images", "translation", "pairs"})
def score_ssim(ctx: ScoringContext) -> dict[str, float]:
    """Mean SSIM (11x11 Gaussian window, sigma 1.5) of each translation to its true target."""
    return {"ssim": float(ssim_per_image(ctx.fake.numpy(), paired_targets(ctx)).mean())}
