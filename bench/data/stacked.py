"""Stacked digits (VEEGAN / PacGAN): three images of a 1-channel labelled dataset stacked
as RGB channels. The label of a stacked image is the triple of its channels' classes, so a
10-class base gives 1,000 modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.data import ImageDataset, Split, dataset_arrays, register_dataset_prefix
from bench.errors import UserError

SEED = 0


def stack_split(split: Split, num_classes: int, rng: np.random.Generator) -> Split:
    """As many stacked images as the split has images, channels drawn independently."""
    idx = rng.integers(len(split.x), size=(len(split.x), 3))
    x = np.concatenate([split.x[idx[:, c]] for c in range(3)], axis=1)
    y = split.y[idx]
    return Split(x, (y[:, 0] * num_classes + y[:, 1]) * num_classes + y[:, 2])


@register_dataset_prefix("stacked")
def stacked(base_name: str, root: Path | None) -> ImageDataset:
    base = dataset_arrays(base_name, root)
    if base.kind != "images" or base.shape[0] != 1 or base.train.y is None:
        raise UserError(
            f"dataset 'stacked:{base_name}': the base must be labelled 1-channel images "
            "(e.g. stacked:mnist5k)"
        )
    k = base.num_classes
    rng = np.random.default_rng(SEED)
    train, test = stack_split(base.train, k, rng), stack_split(base.test, k, rng)
    meta = {"stacked_base": base}  # its classifier labels each channel
    return ImageDataset(f"stacked:{base_name}", "images", train, test, k**3, meta)
