"""Refusals that keep translation and generation apart: models and metrics on data they
cannot run on (torch-free)."""

from __future__ import annotations

from collections.abc import Collection

from bench.data import ImageDataset
from bench.errors import UserError
from bench.translation import is_translation, paired, translates


def translation_metric_fits(name: str, needs: Collection[str], data: ImageDataset) -> bool:
    """Whether a translation metric scores this dataset: paired metrics skip unpaired tasks;
    any translation metric on a dataset that is no translation task is a UserError."""
    if not is_translation(data):
        raise UserError(
            f"metric {name!r} scores translations and {data.name!r} is not a translation "
            "task: use it on edges2mnist, digits2mnist or mnist2digits, or drop it"
        )
    return "pairs" not in needs or paired(data)


def check_model_for(model_or_cls: object, name: str, data: ImageDataset) -> None:
    """A UserError when a model cannot run on this dataset: a generation model on a
    translation task, a translation model on a generation dataset, a model that needs pairs
    on an unpaired task."""
    if is_translation(data) and not translates(model_or_cls):
        raise UserError(
            f"model {name!r} generates images and {data.name!r} is a translation task: use a "
            "translation model (pix2pix, cyclegan, identity, target-sampler, oracle) or one "
            "with translate(x_source, *, generator, batch_size)"
        )
    if not is_translation(data) and translates(model_or_cls):
        raise UserError(
            f"model {name!r} translates images and {data.name!r} is not a translation task: "
            "use it on edges2mnist, digits2mnist or mnist2digits"
        )
    if is_translation(data) and getattr(model_or_cls, "needs_pairs", False) and not paired(data):
        raise UserError(
            f"model {name!r} learns from paired images and {data.name!r} is unpaired: use it "
            "on a paired task (edges2mnist) or give that dataset to an unpaired model (cyclegan)"
        )
