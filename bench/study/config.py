"""Study settings. Confirmed from the HYPE paper (arXiv 1904.01121, abstract and
introduction as readable here): HYPE-time is a per-rater perceptual threshold over
exposure time from an adaptive staircase, HYPE-infinity the error rate on real and
generated images without a time limit, intervals by bootstrap. Every number below is an
option; those marked `unconfirmed` were set before the paper's method (NeurIPS 2019
version, sections 2.1-2.3) could be read, and its HYPE-time differs from some of them
(README, "Human study", lists how). Its HYPE-infinity shows 100 images per evaluator, as
`trials` does by default."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

from bench.errors import UserError

Mode = Literal["inf", "time"]
REFERENCES = ("one", "all", "none")  # which of a suite's references a study shows


@dataclass(frozen=True)
class StudyConfig:
    mode: Mode = "inf"
    trials: int = 100  # unconfirmed: scored trials per rater (rounded up to 2 x models)
    practice: int = 10  # unconfirmed: practice trials with feedback before the scored ones
    images: int = 100  # generated images per model in the pool (and as many real per model)
    display_px: int = 256  # every image is shown at this size (nearest-neighbour upscaling)
    fixation_ms: int = 500  # unconfirmed: fixation cross before each timed image
    mask_ms: int = 500  # unconfirmed: noise mask after each timed image
    start_ms: int = 500  # unconfirmed: HYPE-time staircase start
    min_ms: int = 100  # unconfirmed: HYPE-time exposure range, 100 ms to 1000 ms
    max_ms: int = 1000
    step_ms: int = 10  # unconfirmed: staircase step
    up: int = 3  # unconfirmed: right answers in a row that shorten it (3-up/1-down, ~79%)
    reversals: int = 6  # unconfirmed: threshold = mean exposure at the last N reversals
    block: int = 4  # ours: the staircase moves after each `block` trials of a model (#34)
    seed: int = 0  # the bootstrap's; the pool and trial orders come from the study's secret
    show_class: bool = False  # show each image's class (conditional models' asked class)
    # Quality controls (ours: the paper qualifies raters beforehand instead, README "Human
    # study"). A rater is left out of every score when they miss more than `max_missed` of
    # the `attention` check trials (pixel-noise images, known to be fake) or when their
    # median response time is under `min_rt_ms` (0: no minimum).
    attention: int = 0
    max_missed: int = 0
    min_rt_ms: int = 0
    # ours: on a paired translation task, show each image beside its source ("is this the
    # real target of this source?"): reals are true pairs, fakes a translation beside the
    # source it was made from
    show_source: bool = False

    @property
    def quality_controls(self) -> bool:
        return self.attention > 0 or self.min_rt_ms > 0

    @property
    def stage_width(self) -> int:
        """Width of every picture the page shows (a source and its image side by side)."""
        return pair_width(self.display_px) if self.show_source else self.display_px

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StudyConfig:
        return cls(**json.loads(text))


def pair_width(display_px: int) -> int:
    """Two images of display_px and a gap of an eighth of one between them."""
    return 2 * display_px + display_px // 8


def check_config(cfg: StudyConfig) -> StudyConfig:
    """Bad settings become one UserError line naming the option."""
    if cfg.mode not in ("inf", "time"):
        raise UserError(f"--mode must be inf or time, got {cfg.mode!r}")
    positive = {"trials": cfg.trials, "images": cfg.images, "display-px": cfg.display_px}
    positive |= {"step-ms": cfg.step_ms, "up": cfg.up, "reversals": cfg.reversals}
    for name, v in positive.items():
        if v < 1:
            raise UserError(f"--{name} must be at least 1, got {v}")
    if cfg.block < 2:  # a block of one: each next exposure says whether the last answer was right
        raise UserError(f"--block must be at least 2, got {cfg.block}")
    for name, v in {"practice": cfg.practice, "fixation-ms": cfg.fixation_ms}.items():
        if v < 0:
            raise UserError(f"--{name} must be at least 0, got {v}")
    if cfg.mask_ms < 0:
        raise UserError(f"--mask-ms must be at least 0, got {cfg.mask_ms}")
    check_quality_controls(cfg)
    if not 0 < cfg.min_ms <= cfg.start_ms <= cfg.max_ms:
        raise UserError(
            f"need 0 < --min-ms <= --start-ms <= --max-ms, got {cfg.min_ms}, {cfg.start_ms}, "
            f"{cfg.max_ms}"
        )
    return cfg


def check_quality_controls(cfg: StudyConfig) -> None:
    quality = {"attention": cfg.attention, "max-missed": cfg.max_missed}
    for name, v in (quality | {"min-rt-ms": cfg.min_rt_ms}).items():
        if v < 0:
            raise UserError(f"--{name} must be at least 0, got {v}")
    if cfg.max_missed and cfg.max_missed >= cfg.attention:
        raise UserError(
            f"--max-missed {cfg.max_missed} excludes nobody with --attention {cfg.attention}; "
            "pass more --attention trials than --max-missed"
        )


def check_references(choice: str) -> None:
    if choice not in REFERENCES:
        raise UserError(f"--references must be one, all or none, got {choice!r}")
