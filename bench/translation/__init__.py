"""Image-to-image translation as a task: what a task holds (bench.data.translation builds
them), the model contract, and the refusals that keep generation and translation apart.

A translation model implements

    fit(task, budget, *, seed, progress) -> Spent
        task: the translation ImageDataset; source(task).train.x are the inputs (domain A),
        task.train.x the targets (domain B), image i of each the same pair when paired(task)
    translate(x_source, *, generator, batch_size) -> uint8 NCHW (or float in [0, 1])
        one translation per source image, in order, of the target's shape
    state_dict() / load_state_dict(sd)
    optional: translate_back(x_target, *, generator, batch_size), for cycle models
    optional: needs_pairs = True, refused on unpaired tasks before anything trains

and no `sample`. A job translates the first n_samples images of the source's test split.
"""

from __future__ import annotations

from bench.data import ImageDataset

TRANSLATION_METHODS = ("fit", "translate", "state_dict", "load_state_dict")


def is_translation(data: ImageDataset) -> bool:
    return "source" in data.meta


def source(data: ImageDataset) -> ImageDataset:
    """The source domain A of a translation task (its splits and labels)."""
    return data.meta["source"]


def paired(data: ImageDataset) -> bool:
    return bool(data.meta.get("paired", False))


def translates(model_or_cls: object) -> bool:
    """A translation model: it has `translate` and no `sample`."""
    return hasattr(model_or_cls, "translate") and not hasattr(model_or_cls, "sample")
