"""The picture of a translation job (its samples.png, which the report shows per model):
rows of sources, their translations and targets, 16 columns, repeated."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from bench.data import ImageDataset
from bench.grids import image_grid
from bench.translation import paired, source

COLUMNS = 16
BLOCKS = 2  # of source | translation | target rows


def shown_targets(data: ImageDataset, rows: torch.Tensor) -> torch.Tensor:
    """The target beside each source test image of `rows`: its true target on a paired
    task; else the first target test image of its class (labelled domains), else the
    target test image of that row (cycled)."""
    src, target = source(data).test, data.test
    if paired(data):
        return target.x[rows]
    if src.y is None or target.y is None:
        return target.x[rows % len(target.x)]
    first_of = {int(c): int((target.y == c).nonzero()[0]) for c in target.y.unique()}
    return target.x[[first_of.get(int(c), 0) for c in src.y[rows]]]


def translation_grid(
    data: ImageDataset, translations: torch.Tensor, source_indices: np.ndarray | None = None
) -> Image.Image:
    """source_indices: the source test row of each translation (None: 0 .. n-1)."""
    n = min(len(translations), COLUMNS * BLOCKS)
    rows = torch.arange(n) if source_indices is None else torch.from_numpy(source_indices[:n])
    sources, targets = source(data).test.x[rows], shown_targets(data, rows)
    rows = []
    for start in range(0, n, COLUMNS):
        part = slice(start, min(start + COLUMNS, n))
        rows += [sources[part], translations[part], targets[part]]
    width = len(rows[0])
    blank = torch.full_like(sources[:1], 255)
    padded = [torch.cat([r, blank.expand(width - len(r), *r.shape[1:])]) for r in rows]
    return image_grid(torch.cat(padded), ncol=width)
