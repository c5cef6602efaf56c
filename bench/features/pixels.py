"""Raw pixels as features: each image flattened to C*H*W values in [0, 1]."""

from __future__ import annotations

import numpy as np
import torch

from bench.imageio import check_uint8_nchw


def pixel_features(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """float32 (n, C*H*W) pixel values scaled to [0, 1]."""
    images = check_uint8_nchw(images)
    return images.reshape(len(images), -1).cpu().numpy().astype(np.float32) / np.float32(255)
