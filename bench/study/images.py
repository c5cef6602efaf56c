"""Every image the browser receives is encoded the same way, whatever its origin: RGB PNG
at one display size (nearest-neighbour upscaling, so small images stay crisp and no
resampling filter treats real and generated pixels differently), no metadata chunks, and
no compression, so every file of a study has exactly the same byte length."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image


def display_size(height: int, width: int, display_px: int) -> tuple[int, int]:
    """(width, height) with the longer side at display_px."""
    scale = display_px / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_png(image: torch.Tensor, display_px: int) -> bytes:
    """One uint8 CHW image (1 or 3 channels) as the PNG the page shows."""
    arr = image.detach().cpu().numpy()
    if arr.shape[0] == 1:
        arr = np.repeat(arr, 3, axis=0)
    pil = Image.fromarray(np.ascontiguousarray(arr.transpose(1, 2, 0)))
    pil = pil.resize(display_size(arr.shape[1], arr.shape[2], display_px), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG", compress_level=0)
    return buf.getvalue()
