"""Sample sets: validation of what a model returned, and sample files on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.data import ImageDataset
from bench.errors import UserError


def check_samples(x, data: ImageDataset, n: int | None = None) -> torch.Tensor:
    """Validate samples against the dataset (shape, finiteness, range) and quantize float
    images in [0, 1] to uint8; point samples come back as float32."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise UserError(f"samples must be a torch.Tensor, got {type(x).__name__}")
    x = x.detach().cpu()
    want = (len(x) if n is None else n, *data.shape)
    if tuple(x.shape) != want:
        raise UserError(f"samples have shape {tuple(x.shape)}, expected {want}")
    if data.kind == "points":
        x = x.float()
        if not torch.isfinite(x).all():
            raise UserError("samples contain NaN or inf")
        return x
    if x.dtype == torch.uint8:
        return x
    if not x.is_floating_point():
        raise UserError(f"image samples must be uint8 or float in [0, 1], got {x.dtype}")
    if not torch.isfinite(x).all():
        raise UserError("samples contain NaN or inf")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise UserError(f"float samples must lie in [0, 1], got range [{lo:.3g}, {hi:.3g}]")
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def load_samples_file(path: Path, data: ImageDataset) -> torch.Tensor:
    """Images from an .npz or image folder; points from an .npz of float (n, D) arrays."""
    if data.kind == "images":
        from bench.imageio import load_images

        return check_samples(load_images(path), data)
    try:
        with np.load(path) as npz:
            arr = npz[npz.files[0]]
    except (OSError, ValueError, IndexError) as e:
        raise UserError(f"{path}: cannot read points from it ({e}); save an .npz") from None
    return check_samples(torch.from_numpy(np.asarray(arr, dtype=np.float32)), data)
