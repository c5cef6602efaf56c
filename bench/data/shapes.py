"""`shapes`: 28x28 grayscale shapes with known generating factors (in the spirit of
dSprites), for disentanglement metrics.

Every combination of the factor grid is drawn once (FACTOR_VALUES: 3 shapes x 3 scales x
6 orientations x 6 x-positions x 6 y-positions = 1,944 images). A shape is an implicit
region in its own coordinates (u, v):

- square: max(|u|, |v|) <= 1
- ellipse: u^2 + 4 v^2 <= 1 (twice as long as wide, so its orientation shows)
- heart: (u^2 + w^2 - 1)^3 - u^2 w^3 <= 0 with w = -v (the point downwards on screen)

A pixel (column i, row j) holds 4x4 sub-pixel samples at (i + (a + 0.5) / 4,
j + (b + 0.5) / 4), a, b in 0..3; a sample at (px, py) maps to u = (dx c + dy s) / scale,
v = (-dx s + dy c) / scale with dx = px - x, dy = py - y, c = cos(theta), s = sin(theta);
the pixel is round(255 * inside / 16) by integer arithmetic (inside: how many of its 16
samples lie in the shape). Orientations are 0..75 degrees in steps of 15 (all distinct
for these shapes); cos and sin are rounded to 12 decimals, so a last-bit difference of
another machine's libm cannot change an image; the rest is IEEE float64 arithmetic, so
the images are the same bytes everywhere (tests/data/test_shapes.py pins their hash).

The class label is the shape; the factor indices of each image are in
`meta["factors_train"]` / `meta["factors_test"]` ((n, 5) int64, columns FACTOR_NAMES,
each an index into FACTOR_VALUES). The split is the fixed stratified 80/20 one of every
labelled built-in dataset.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

from bench.data import ImageDataset, Split, register_dataset, stratified_split

SIDE = 28
SUBSAMPLES = 4  # per pixel side
SHAPES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "orientation", "x", "y")
FACTOR_VALUES: dict[str, tuple] = {
    "shape": SHAPES,
    "scale": (4.0, 5.0, 6.0),  # pixels from the centre to the unit outline
    "orientation": (0, 15, 30, 45, 60, 75),  # degrees, clockwise on screen (y points down)
    "x": (9.0, 11.0, 13.0, 15.0, 17.0, 19.0),  # centre, in pixels from the left edge
    "y": (9.0, 11.0, 13.0, 15.0, 17.0, 19.0),  # centre, in pixels from the top edge
}
FACTOR_SIZES = tuple(len(FACTOR_VALUES[f]) for f in FACTOR_NAMES)


def inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether points (u, v), in the shape's own unit coordinates, lie in the shape."""
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 1.0
    if shape == "ellipse":
        return u * u + 4.0 * v * v <= 1.0
    w = -v
    r = u * u + w * w - 1.0
    return r * r * r - u * u * w * w * w <= 0.0


def sample_grid() -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel sample coordinates, shape (SIDE, SUBSAMPLES, SIDE, SUBSAMPLES) each."""
    offsets = (np.arange(SUBSAMPLES) + 0.5) / SUBSAMPLES
    axis = np.arange(SIDE)[:, None] + offsets[None, :]  # (SIDE, SUBSAMPLES)
    py = np.broadcast_to(axis[:, :, None, None], (SIDE, SUBSAMPLES, SIDE, SUBSAMPLES))
    px = np.broadcast_to(axis[None, None, :, :], (SIDE, SUBSAMPLES, SIDE, SUBSAMPLES))
    return px, py


def draw(factors: tuple[int, int, int, int, int]) -> np.ndarray:
    """The (SIDE, SIDE) uint8 image of one combination of factor indices."""
    values = (FACTOR_VALUES[name][i] for name, i in zip(FACTOR_NAMES, factors, strict=True))
    shape, scale, degrees, x, y = values
    theta = math.radians(degrees)
    c, s = round(math.cos(theta), 12), round(math.sin(theta), 12)
    px, py = sample_grid()
    dx, dy = px - x, py - y
    u, v = (dx * c + dy * s) / scale, (-dx * s + dy * c) / scale
    count = inside(shape, u, v).sum(axis=(1, 3), dtype=np.int64)
    per_pixel = SUBSAMPLES * SUBSAMPLES
    return ((count * 255 + per_pixel // 2) // per_pixel).astype(np.uint8)


def all_factors() -> np.ndarray:
    """(n, 5) int64: every combination of factor indices, the last factor fastest."""
    return np.array(list(itertools.product(*map(range, FACTOR_SIZES))), dtype=np.int64)


@register_dataset("shapes")
def shapes(root: Path | None = None) -> ImageDataset:
    """28x28 square/ellipse/heart with known factors (shape, scale, orientation, x, y),
    1,944 images drawn with numpy, 80/20 split; the label is the shape."""
    factors = all_factors()
    images = np.stack([draw(tuple(f)) for f in factors])[:, None]
    labels = factors[:, 0].copy()
    train, test = stratified_split(images, labels, 0.2)
    meta = {
        "factor_names": FACTOR_NAMES,
        "factor_sizes": FACTOR_SIZES,
        "factors_train": factors[train],
        "factors_test": factors[test],
    }
    as_split = lambda idx: Split(images[idx], labels[idx])  # noqa: E731
    return ImageDataset("shapes", "images", as_split(train), as_split(test), len(SHAPES), meta)
