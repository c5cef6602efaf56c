"""2-D Gaussian mixtures for mode coverage (VEEGAN / PacGAN protocol)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bench.data import ImageDataset, Split, register_dataset

N_TRAIN, N_TEST = 20_000, 5_000


def ring8_centers() -> np.ndarray:
    angles = 2 * math.pi * np.arange(8) / 8
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid25_centers() -> np.ndarray:
    g = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    return np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)


def mixture(name: str, centers: np.ndarray, sigma: float, seed: int) -> ImageDataset:
    rng = np.random.default_rng(seed)

    def draw(n: int) -> Split:
        comp = rng.integers(len(centers), size=n)
        pts = centers[comp] + sigma * rng.standard_normal((n, centers.shape[1]))
        return Split(pts.astype(np.float32), comp)

    train, test = draw(N_TRAIN), draw(N_TEST)
    meta = {"centers": centers.tolist(), "sigma": sigma}
    return ImageDataset(name, "points", train, test, len(centers), meta)


@register_dataset("ring8")
def ring8(root: Path | None = None) -> ImageDataset:
    return mixture("ring8", ring8_centers(), 0.01, seed=8)


@register_dataset("grid25")
def grid25(root: Path | None = None) -> ImageDataset:
    return mixture("grid25", grid25_centers(), 0.05, seed=25)
