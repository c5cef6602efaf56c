"""PIL bicubic resizing of uint8 images, the step both dgm-eval (DINOv2) and cmmd (CLIP) take.

PIL's bicubic filter widens with the downscaling factor (it antialiases), and it runs on the
8-bit image, so the result is rounded to uint8 before the networks' normalization."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def pil_bicubic(images: torch.Tensor, size: int, *, center_crop: bool) -> torch.Tensor:
    """float32 (n, 3, size, size) in [0, 1] from uint8 (n, 1 or 3, h, w).

    Grayscale becomes RGB as PIL's convert("RGB") makes it (the channel repeated). With
    `center_crop`, the central square of side min(h, w) is resized (cmmd's io_util); without,
    the whole image is squashed to the square (dgm-eval's transform)."""
    hwc = images.permute(0, 2, 3, 1).cpu().numpy()
    out = np.empty((len(hwc), size, size, 3), dtype=np.uint8)
    for i, im in enumerate(hwc):
        pil = Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).convert("RGB")
        if center_crop:
            w, h = pil.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            pil = pil.crop((left, top, left + side, top + side))
        out[i] = np.asarray(pil.resize((size, size), resample=Image.BICUBIC))
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255)
