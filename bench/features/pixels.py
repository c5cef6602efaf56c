"""Raw pixels as features: each image flattened to C*H*W values in [0, 1]."""

from __future__ import annotations

import numpy as np
import torch

from bench.data import ImageDataset
from bench.features import Extractor, register_extractor
from bench.imageio import check_uint8_nchw


def pixel_features(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """float32 (n, C*H*W) pixel values scaled to [0, 1]."""
    images = check_uint8_nchw(images)
    return images.reshape(len(images), -1).cpu().numpy().astype(np.float32) / np.float32(255)


def coordinates_or_pixels(x: torch.Tensor) -> np.ndarray:
    """Flattened pixels in [0, 1]; points pass through as their coordinates."""
    if x.dtype == torch.uint8:
        return pixel_features(x)
    return x.reshape(len(x), -1).float().numpy()


@register_extractor("pixels", kinds=("images", "points"), dim=lambda data: int(np.prod(data.shape)))
def load_pixels(data: ImageDataset, device: torch.device, weights: None) -> Extractor:
    """Raw pixels in [0, 1] (coordinates for point datasets)."""
    return Extractor(coordinates_or_pixels)
