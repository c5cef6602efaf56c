"""Every image the browser receives is encoded the same way, whatever its origin: RGB PNG
at one display size (nearest-neighbour upscaling, so small images stay crisp and no
resampling filter treats real and generated pixels differently), no metadata chunks, and
no compression, so every file of a study has exactly the same byte length."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from bench.study.config import pair_width

PAGE_GREY = (128, 128, 128)  # study.css's background, #808080


def display_size(height: int, width: int, display_px: int) -> tuple[int, int]:
    """(width, height) with the longer side at display_px."""
    scale = display_px / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_png(image: torch.Tensor, display_px: int) -> bytes:
    """One uint8 CHW image (1 or 3 channels) as the PNG the page shows."""
    return _png(_shown(image, display_px))


def encode_pair_png(beside: torch.Tensor, image: torch.Tensor, display_px: int) -> bytes:
    """A translation study's picture: the source image on the left, the image judged on the
    right, each as encode_png shows it, a gap of the page's grey between them; always
    pair_width(display_px) by display_px pixels."""
    canvas = Image.new("RGB", (pair_width(display_px), display_px), PAGE_GREY)
    for x, picture in ((0, beside), (pair_width(display_px) - display_px, image)):
        pil = _shown(picture, display_px)
        canvas.paste(pil, (x + (display_px - pil.width) // 2, (display_px - pil.height) // 2))
    return _png(canvas)


def _shown(image: torch.Tensor, display_px: int) -> Image.Image:
    arr = image.detach().cpu().numpy()
    if arr.shape[0] == 1:
        arr = np.repeat(arr, 3, axis=0)
    pil = Image.fromarray(np.ascontiguousarray(arr.transpose(1, 2, 0)))
    return pil.resize(display_size(arr.shape[1], arr.shape[2], display_px), Image.NEAREST)


def _png(pil: Image.Image) -> bytes:
    buf = io.BytesIO()
    pil.save(buf, format="PNG", compress_level=0)
    return buf.getvalue()
