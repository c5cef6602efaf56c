"""Which images a study shows: the image pool (with opaque ids) and each rater's trials.

HYPE-infinity and HYPE-time both score a model on its own generated images and an equal
number of real ones, so every scored trial belongs to one model: per rater and model half
the trials show that model's samples, half show real images, and the trials of all models
are shuffled together (interleaved). Practice images are kept apart from scored ones."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import numpy as np

from bench.errors import UserError
from bench.study.config import StudyConfig

REAL = "real"


@dataclass(frozen=True)
class PoolImage:
    id: str  # opaque: the URL of the image, carries nothing about it
    source: str  # a model label, or REAL
    index: int  # row in that source's tensor
    practice: bool

    @property
    def is_real(self) -> bool:
        return self.source == REAL


@dataclass(frozen=True)
class Trial:
    index: int
    image_id: str
    model: str  # the model whose score the trial counts towards ("" for practice)
    is_real: bool
    practice: bool


def trials_per_rater(cfg: StudyConfig, n_models: int) -> int:
    """Scored trials, rounded up so each model gets as many real as generated images."""
    unit = 2 * n_models
    return -(-cfg.trials // unit) * unit


def build_pool(cfg: StudyConfig, sizes: dict[str, int], n_real: int) -> list[PoolImage]:
    """Draw `cfg.images` generated images per model and as many real ones per model, plus
    the practice images, each under a fresh random id."""
    rng = np.random.default_rng(cfg.seed)
    n_prac_fake = cfg.practice // 2
    n_prac_real = cfg.practice - n_prac_fake
    need_real = cfg.images * len(sizes) + n_prac_real
    if n_real < need_real:
        raise UserError(
            f"the dataset has {n_real} real training images; the study needs {need_real} "
            "(lower --images or --practice)"
        )
    pool: list[PoolImage] = []
    real_order = rng.permutation(n_real)[:need_real]
    for j, i in enumerate(real_order):
        pool.append(PoolImage(_new_id(), REAL, int(i), practice=j >= need_real - n_prac_real))
    for k, (label, n) in enumerate(sizes.items()):
        extra = len(range(k, n_prac_fake, len(sizes)))  # practice fakes spread over models
        if n < cfg.images + extra:
            raise UserError(
                f"model {label!r} has {n} samples; the study needs {cfg.images + extra} "
                "(lower --images)"
            )
        order = rng.permutation(n)[: cfg.images + extra]
        for j, i in enumerate(order):
            pool.append(PoolImage(_new_id(), label, int(i), practice=j >= cfg.images))
    return pool


def rater_trials(
    cfg: StudyConfig, models: list[str], pool: list[PoolImage], token: str
) -> list[Trial]:
    """Practice trials first, then the scored ones; drawn from a generator seeded by the
    study seed and the rater's token, so every rater sees a different sample of images."""
    seed = int(hashlib.sha256(f"{cfg.seed}:{token}".encode()).hexdigest()[:16], 16)
    rng = np.random.default_rng(seed)
    practice = [p for p in pool if p.practice]
    prac = [practice[i] for i in rng.permutation(len(practice))]
    trials = [Trial(i, p.id, "", p.is_real, True) for i, p in enumerate(prac)]
    per_model = trials_per_rater(cfg, len(models)) // len(models)
    reals = [p for p in pool if p.is_real and not p.practice]
    real_draw = _draw(rng, reals, per_model // 2 * len(models))
    scored = []
    for k, label in enumerate(models):
        fakes = [p for p in pool if p.source == label and not p.practice]
        scored += [(p, label) for p in _draw(rng, fakes, per_model // 2)]
        scored += [(p, label) for p in real_draw[k * per_model // 2 : (k + 1) * per_model // 2]]
    order = rng.permutation(len(scored))
    for p, label in (scored[i] for i in order):
        trials.append(Trial(len(trials), p.id, label, p.is_real, False))
    return trials


def _draw(rng: np.random.Generator, items: list, n: int) -> list:
    """n items without replacement while the pool lasts, then again from a fresh shuffle."""
    out: list = []
    while len(out) < n:
        out += [items[i] for i in rng.permutation(len(items))][: n - len(out)]
    return out


def _new_id() -> str:
    return secrets.token_urlsafe(16)  # always 22 characters, for real and generated alike
