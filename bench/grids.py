"""Image artifacts: sample grids for image datasets, scatter plots for point datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def image_grid(images: torch.Tensor, ncol: int = 16, scale: int | None = None) -> Image.Image:
    """uint8 NCHW images tiled into one PIL image, upscaled so small digits stay visible."""
    n, c, h, w = images.shape
    ncol = min(ncol, n)
    nrow = -(-n // ncol)
    pad = 1
    canvas = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), 255, np.uint8)
    arr = images.permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, col = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        canvas[y : y + h, x : x + w] = arr[i]
    img = Image.fromarray(canvas[..., 0] if c == 1 else canvas)
    scale = scale or max(1, 256 // max(h, w) // 2)
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def save_sample_figure(samples: torch.Tensor, kind: str, path: Path, reference=None) -> Path:
    """A PNG of the first 128 samples (images), or a scatter of points over the reference."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "images":
        image_grid(samples[:128]).save(path)
        return path
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if reference is not None:
        ref = np.asarray(reference)[:2000]
        ax.scatter(ref[:, 0], ref[:, 1], s=2, c="#bbbbbb", label="train")
    pts = samples.numpy()[:2000]
    ax.scatter(pts[:, 0], pts[:, 1], s=2, c="#d62728", label="samples")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def class_rows(images: torch.Tensor, labels: torch.Tensor, rows: int = 16, ncol: int = 16):
    """Class-conditional samples a row per class (the first `rows` classes asked for, in
    order), up to `ncol` each; short rows are padded with white tiles."""
    blank = torch.full_like(images[:1], 255)
    tiles = []
    for c in labels.unique()[:rows]:
        mine = images[labels == c][:ncol]
        tiles += [mine, blank.expand(ncol - len(mine), *images.shape[1:])]
    return torch.cat(tiles)


def save_nn_grid(
    samples: torch.Tensor, train: torch.Tensor, path: Path, rows: int = 16, k: int = 4
) -> Path:
    """Each row: a generated sample, then its k nearest training images in pixel space."""
    from bench.metrics.memorization import nearest_training_indices

    fake = samples[:rows]
    flat = lambda x: x.reshape(len(x), -1).float() / 255.0  # noqa: E731
    idx = nearest_training_indices(flat(fake), flat(train), k)
    tiles = torch.cat([torch.cat([fake[i : i + 1], train[idx[i]]]) for i in range(len(fake))])
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(tiles, ncol=k + 1).save(path)
    return path
