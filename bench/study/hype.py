"""HYPE scores with 95% bootstrap intervals (Zhou et al. 2019).

HYPE-infinity: the share of misjudged images (generated called real, real called
generated), overall and per class; its interval resamples raters and images together
(both with replacement), as the paper's bootstrap over evaluators and images.
HYPE-time: the mean over raters of each rater's staircase threshold, the interval from
resampling raters. Then the scores as job-run columns: named for their study, shown with
their interval and counts, flagged below the paper's numbers of raters and judgements."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

N_BOOT = 2000


def hype_infinity(
    raters: Sequence[str],
    images: Sequence[str],
    is_real: Sequence[bool],
    correct: Sequence[bool],
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> dict[str, float]:
    """Error rates in [0, 1] (0.5: indistinguishable from real) and their intervals."""
    r_idx = np.unique(np.asarray(raters), return_inverse=True)[1]
    i_idx = np.unique(np.asarray(images), return_inverse=True)[1]
    real = np.asarray(is_real, dtype=bool)
    err = ~np.asarray(correct, dtype=bool)
    n_r, n_i = int(r_idx.max()) + 1, int(i_idx.max()) + 1
    rng = np.random.default_rng(seed)
    # Weight of each judgement in a resample: times its rater x times its image was drawn.
    wr = rng.multinomial(n_r, np.full(n_r, 1 / n_r), size=n_boot)[:, r_idx]
    wi = rng.multinomial(n_i, np.full(n_i, 1 / n_i), size=n_boot)[:, i_idx]
    w = (wr * wi).astype(np.float64)
    out: dict[str, float] = {}
    for name, mask in (("hype_inf", np.ones_like(real)), ("hype_inf_fake", ~real)):
        out.update(_rate(name, err, mask, w))
    out.update(_rate("hype_inf_real", err, real, w))
    out["hype_raters"] = float(n_r)
    out["hype_judgements"] = float(len(err))
    return out


def _rate(name: str, err: np.ndarray, mask: np.ndarray, w: np.ndarray) -> dict[str, float]:
    if not mask.any():
        return {}
    wm = w[:, mask]
    total = wm.sum(axis=1)
    boot = (wm * err[mask]).sum(axis=1)[total > 0] / total[total > 0]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {name: float(err[mask].mean()), f"{name}_lo": float(lo), f"{name}_hi": float(hi)}


def hype_time(thresholds: Sequence[float], n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Mean per-rater threshold in ms and its interval. Higher is better: raters need a
    longer look to tell the model's images from real ones."""
    t = np.asarray(thresholds, dtype=np.float64)
    rng = np.random.default_rng(seed)
    boot = t[rng.integers(0, len(t), size=(n_boot, len(t)))].mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {
        "hype_time_ms": float(t.mean()),
        "hype_time_ms_lo": float(lo),
        "hype_time_ms_hi": float(hi),
        "hype_raters": float(len(t)),
    }


# -- the scores as columns -----------------------------------------------------------

SCORES = ("hype_inf", "hype_inf_fake", "hype_inf_real", "hype_time_ms")
OVERALL = ("hype_inf", "hype_time_ms")  # over all of a model's judgements: shown with counts
COUNTS = ("hype_raters", "hype_judgements", "hype_time_excluded")  # and quality.EXCLUDED
# The paper's design (Zhou et al. 2019, NeurIPS version: sections 2.2, 3 and 4.3, see
# README "Human study"): 30 evaluators per model and, for HYPE-infinity, 100 images each
# (50 real, 50 generated). A score short of it is flagged, not hidden.
MIN_RATERS = 30
MIN_INF_JUDGEMENTS = 3000


def study_column(score: str, study: str) -> str:
    """A study's score as a metric of a job run, named for the study (`hype_inf/NAME`):
    several studies of one output folder each keep their own."""
    return f"{score}/{study}"


def split_study(column: str) -> tuple[str, str | None]:
    """(score, study) of a study's column; study None for the plain `hype_*` columns that
    studies wrote before they were named."""
    score, sep, study = column.partition("/")
    return (score, study) if sep and score.startswith("hype_") else (column, None)


def cell_parts(column: str) -> dict[str, str]:
    """What a score column's leaderboard cell shows besides the score: its interval and
    its study's counts (part -> column); empty for any other column."""
    score, study = split_study(column)
    if score not in SCORES:
        return {}

    def named(c: str) -> str:
        return c if study is None else study_column(c, study)

    parts = {"lo": f"{score}_lo", "hi": f"{score}_hi", "raters": "hype_raters"}
    parts |= {"judgements": "hype_judgements", "excluded": "hype_time_excluded"}
    return {part: named(c) for part, c in parts.items()}


def below_minimum(score: str, raters: float, judgements: float) -> bool:
    """Whether a score (`hype_inf`, ..., without its study) rests on fewer raters (or, for
    HYPE-infinity, judgements) than the paper's design. HYPE-time's interval resamples
    raters only: raters alone count."""
    if raters < MIN_RATERS:
        return True
    return not score.startswith("hype_time") and judgements < MIN_INF_JUDGEMENTS


def minimum_note(scores: dict[str, float]) -> str:
    """What one model's scores of a study fall short of ("" when nothing)."""
    score = "hype_time_ms" if "hype_time_ms" in scores else "hype_inf"
    raters, judgements = scores.get("hype_raters", 0), scores.get("hype_judgements", 0)
    if not below_minimum(score, raters, judgements):
        return ""
    need = f"{MIN_RATERS} raters"
    if score == "hype_inf":
        need += f" and {MIN_INF_JUDGEMENTS} judgements"
    return f"below the HYPE paper's minimum ({need}); flagged on the leaderboard"
