"""Which images a study shows: the image pool (with opaque ids) and each rater's trials.

HYPE-infinity and HYPE-time both score a model on its own generated images and an equal
number of real ones, so every scored trial belongs to one model: per rater and model half
the trials show that model's samples, half show real images, and the trials of all models
are shuffled together (interleaved). Practice images are kept apart from scored ones.

A study that shows each image's class (`show_class`) matches classes: the pool's real
images have the classes of its generated ones, and per rater and model the real trials
have the classes of the generated trials, so the class shown says nothing about which is
which.

Attention checks (`cfg.attention`, README "Human study") are scored trials of their own:
pixel-noise images (source ATTENTION, known to be fake) shuffled in among a rater's scored
trials. Each counts towards no model but is shown as one model's trial is (in HYPE-time at
that model's current exposure), so that nothing sent about it differs from an ordinary
trial's."""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from bench.errors import UserError
from bench.study.config import StudyConfig
from bench.study.secret import keyed_rng

REAL = "real"
ATTENTION = "<attention>"  # the source of attention-check images: no label can spell it


@dataclass(frozen=True)
class PoolImage:
    id: str  # opaque: the URL of the image, carries nothing about it
    source: str  # a model label, or REAL
    index: int  # row in that source's tensor
    practice: bool
    label: int | None = None  # its class, in a study that shows classes

    @property
    def is_real(self) -> bool:
        return self.source == REAL


@dataclass(frozen=True)
class Trial:
    index: int
    image_id: str
    model: str  # the model whose score the trial counts towards ("" for practice); of an
    # attention check, the model it is shown as (whose exposure it gets)
    is_real: bool
    practice: bool
    check: bool = False  # an attention check (an ATTENTION image)


def trials_per_rater(cfg: StudyConfig, n_models: int) -> int:
    """Scored trials, rounded up so each model gets as many real as generated images."""
    unit = 2 * n_models
    return -(-cfg.trials // unit) * unit


def build_pool(
    cfg: StudyConfig,
    sizes: dict[str, int],
    n_real: int,
    secret: bytes,
    labels: dict[str, np.ndarray] | None = None,
) -> list[PoolImage]:
    """Draw `cfg.images` generated images per model and as many real ones per model, plus
    the practice images, each under a fresh random id, at random by the study's secret.
    With `labels` (source -> class of each of its images, REAL included) every image
    carries its class and the scored real images have the classes of the scored generated
    ones."""
    rng = keyed_rng(secret, "pool")
    n_prac_fake = cfg.practice // 2
    n_prac_real = cfg.practice - n_prac_fake
    need_real = cfg.images * len(sizes) + n_prac_real
    if n_real < need_real:
        raise UserError(
            f"the dataset has {n_real} real training images; the study needs {need_real} "
            "(lower --images or --practice)"
        )
    fakes: list[PoolImage] = []
    for k, (label, n) in enumerate(sizes.items()):
        extra = len(range(k, n_prac_fake, len(sizes)))  # practice fakes spread over models
        if n < cfg.images + extra:
            raise UserError(
                f"model {label!r} has {n} samples; the study needs {cfg.images + extra} "
                "(lower --images)"
            )
        order = rng.permutation(n)[: cfg.images + extra]
        for j, i in enumerate(order):
            fakes.append(PoolImage("", label, int(i), practice=j >= cfg.images))
    if labels is None:
        real_order = rng.permutation(n_real)[:need_real]
    else:
        wanted = [int(labels[p.source][p.index]) for p in fakes if not p.practice]
        real_order = _class_matched(rng, wanted, labels[REAL])
        rest = np.setdiff1d(np.arange(n_real), real_order)
        real_order = np.concatenate([real_order, rng.permutation(rest)[:n_prac_real]])
    reals = [
        PoolImage("", REAL, int(i), practice=j >= need_real - n_prac_real)
        for j, i in enumerate(real_order)
    ]
    checks = [PoolImage("", ATTENTION, i, practice=False) for i in range(cfg.attention)]
    pool = [replace(p, id=_new_id()) for p in reals + fakes + checks]
    return pool if labels is None else with_labels(pool, labels)


def with_labels(pool: list[PoolImage], labels: dict[str, np.ndarray]) -> list[PoolImage]:
    """The pool with each image's class (source -> class of each of its images)."""
    return [replace(p, label=int(labels[p.source][p.index])) for p in pool]


def _class_matched(
    rng: np.random.Generator, wanted: list[int], real_labels: np.ndarray
) -> np.ndarray:
    """Rows of real images, as many of each class as `wanted` holds, drawn at random."""
    rows = []
    for c, n in sorted(Counter(wanted).items()):
        of_class = np.flatnonzero(real_labels == c)
        if len(of_class) < n:
            raise UserError(
                f"the dataset has {len(of_class)} real training images of class {c}; the "
                f"study shows {n} generated ones of that class and as many real (lower --images)"
            )
        rows.append(rng.permutation(of_class)[:n])
    return np.concatenate(rows) if rows else np.zeros(0, np.int64)


def rater_trials(
    cfg: StudyConfig, models: list[str], pool: list[PoolImage], secret: bytes, token: str
) -> list[Trial]:
    """Practice trials first, then the scored ones; drawn from a generator keyed by the
    study's secret and the rater's token: every rater sees a different sample of images,
    in an order no rater can recompute."""
    rng = keyed_rng(secret, "rater", token)
    practice = [p for p in pool if p.practice]
    prac = [practice[i] for i in rng.permutation(len(practice))]
    trials = [Trial(i, p.id, "", p.is_real, True) for i, p in enumerate(prac)]
    half = trials_per_rater(cfg, len(models)) // len(models) // 2
    reals = [p for p in pool if p.is_real and not p.practice]
    fake_draw = {
        label: _draw(rng, [p for p in pool if p.source == label and not p.practice], half)
        for label in models
    }
    if cfg.show_class:
        real_draw = _draw_classes(rng, reals, [p.label for m in models for p in fake_draw[m]])
    else:
        real_draw = _draw(rng, reals, half * len(models))
    scored = []
    for k, label in enumerate(models):
        scored += [(p, label) for p in fake_draw[label]]
        scored += [(p, label) for p in real_draw[k * half : (k + 1) * half]]
    checks = [p for p in pool if p.source == ATTENTION]
    if checks:  # each shown as a model drawn at random (a study without checks draws nothing)
        shown_as = rng.integers(len(models), size=len(checks))
        scored += [(p, models[k]) for p, k in zip(checks, shown_as, strict=True)]
    order = rng.permutation(len(scored))
    for p, label in (scored[i] for i in order):
        trials.append(Trial(len(trials), p.id, label, p.is_real, False, p.source == ATTENTION))
    return trials


def _draw_classes(rng: np.random.Generator, reals: list[PoolImage], classes: list) -> list:
    """One real image of each class in `classes`, in that order (drawn as _draw does,
    per class)."""
    by_class = {
        c: iter(_draw(rng, [p for p in reals if p.label == c], n))
        for c, n in sorted(Counter(classes).items())
    }
    return [next(by_class[c]) for c in classes]


def _draw(rng: np.random.Generator, items: list, n: int) -> list:
    """n items without replacement while the pool lasts, then again from a fresh shuffle."""
    out: list = []
    while len(out) < n:
        out += [items[i] for i in rng.permutation(len(items))][: n - len(out)]
    return out


def _new_id() -> str:
    return secrets.token_urlsafe(16)  # always 22 characters, for real and generated alike
