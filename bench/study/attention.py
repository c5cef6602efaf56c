"""Attention-check images: obviously fake by construction, so a rater who looks calls them
fake. Each is a pixel-gaussian sample: every pixel drawn on its own from a normal with
that pixel's mean and standard deviation over the dataset's real training images, so it
has the real images' brightness and colour but no shape. Drawn from the study's secret:
the same images whenever the study is reopened, and none a rater can recompute."""

from __future__ import annotations

import numpy as np
import torch

from bench.study.secret import keyed_rng

CHUNK = 1024


def attention_images(n: int, real: torch.Tensor, secret: bytes) -> torch.Tensor:
    """n uint8 images shaped as the real uint8 NCHW ones."""
    if n == 0:
        return torch.zeros((0, *real.shape[1:]), dtype=torch.uint8)
    total = np.zeros(real.shape[1:])
    squares = np.zeros(real.shape[1:])
    for start in range(0, len(real), CHUNK):  # a float copy of a large dataset would not fit
        x = real[start : start + CHUNK].numpy().astype(np.float64)
        total += x.sum(axis=0)
        squares += (x**2).sum(axis=0)
    mean = total / len(real)
    std = np.sqrt(np.maximum(squares / len(real) - mean**2, 0))
    noise = keyed_rng(secret, "attention").standard_normal((n, *mean.shape))
    return torch.from_numpy(np.clip(np.rint(mean + std * noise), 0, 255).astype(np.uint8))


def attention_classes(n: int, real_labels: np.ndarray, secret: bytes) -> np.ndarray:
    """The class a study that shows classes gives each check: a real image's, at random."""
    return keyed_rng(secret, "attention classes").choice(real_labels, size=n).astype(np.int64)
