"""A study of translations (README "Human study", translation tasks): the fakes are a
model's translations, the reals the target domain's test images, the split the
translations are scored against. Each translation carries its source's class (for
--show-class: "is this a real 7?") and, with --show-source on a paired task, its source
image, shown beside it; a real image is then shown beside its own source (test pair i),
so the question becomes whether the image is the real target of that source."""

from __future__ import annotations

import numpy as np
import torch

from bench.data import ImageDataset
from bench.errors import UserError
from bench.study.sources import Source
from bench.translation import is_translation, paired, source


def check_show_source(data: ImageDataset, show_source: bool) -> None:
    if show_source and not (is_translation(data) and paired(data)):
        raise UserError(
            f"--show-source shows each image beside its source, on a paired translation task; "
            f"{data.name!r} is not one: use it with edges2mnist, or leave it out"
        )


def translations(
    data: ImageDataset, images: torch.Tensor, rows: np.ndarray | None, show_source: bool
) -> Source:
    """A model's translations of the source test rows `rows` (None: 0 .. n-1), with their
    sources' classes and, with show_source, the sources themselves."""
    src = source(data).test
    if rows is None and len(images) > len(src.x):
        raise UserError(
            f"{len(images)} translations and the source test split of {data.name!r} holds "
            f"{len(src.x)} images; give at most that many, or their source_indices"
        )
    index = torch.arange(len(images)) if rows is None else torch.as_tensor(rows)
    labels = None if src.y is None else src.y[index].numpy().astype(np.int64)
    return Source(images, labels, src.x[index] if show_source else None)


def real_targets(data: ImageDataset, show_source: bool) -> Source:
    """The target domain's test images (with their classes); with show_source each beside
    its own source, test pair i."""
    test = data.test
    labels = None if test.y is None else test.y.numpy().astype(np.int64)
    return Source(test.x, labels, source(data).test.x if show_source else None)
