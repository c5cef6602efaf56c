"""The picture of a translation job (its samples.png, which the report shows per model):
rows of sources, their translations and targets, 16 columns, repeated."""

from __future__ import annotations

import torch
from PIL import Image

from bench.data import ImageDataset
from bench.grids import image_grid
from bench.translation import paired, source

COLUMNS = 16
BLOCKS = 2  # of source | translation | target rows


def shown_targets(data: ImageDataset, n: int) -> torch.Tensor:
    """The target beside source test image i: its true target on a paired task; else the
    first target test image of its class (labelled domains), else target test image i."""
    src, target = source(data).test, data.test
    if paired(data):
        return target.x[:n]
    if src.y is None or target.y is None:
        return target.x[torch.arange(n) % len(target.x)]
    first_of = {int(c): int((target.y == c).nonzero()[0]) for c in target.y.unique()}
    return target.x[[first_of.get(int(c), 0) for c in src.y[:n]]]


def translation_grid(data: ImageDataset, translations: torch.Tensor) -> Image.Image:
    n = min(len(translations), COLUMNS * BLOCKS)
    sources, targets = source(data).test.x[:n], shown_targets(data, n)
    rows = []
    for start in range(0, n, COLUMNS):
        part = slice(start, min(start + COLUMNS, n))
        rows += [sources[part], translations[part], targets[part]]
    width = len(rows[0])
    blank = torch.full_like(sources[:1], 255)
    padded = [torch.cat([r, blank.expand(width - len(r), *r.shape[1:])]) for r in rows]
    return image_grid(torch.cat(padded), ncol=width)
