"""A job's translations: the model translates the first n images of the source's test split."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.data import ImageDataset
from bench.errors import UserError
from bench.translation import source

if TYPE_CHECKING:  # the torch-free plan (bench.plan) imports this module
    import torch


def check_task_size(data: ImageDataset, n: int) -> None:
    """A translation job translates n source test images: the split must hold them."""
    have = len(source(data).test.x)
    if n > have:
        raise UserError(
            f"dataset {data.name!r}: n_samples={n} and its source test split holds {have} "
            f"images to translate; set n_samples to at most {have}"
        )


def translate_sources(
    model, data: ImageDataset, n: int, generator: torch.Generator, batch_size: int
) -> torch.Tensor:
    import torch

    x = source(data).test.x[:n].clone()  # a model may write into its input
    with torch.inference_mode():
        return model.translate(x, generator=generator, batch_size=batch_size)
