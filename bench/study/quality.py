"""Which raters a study leaves out of its scores, and why (its quality controls,
README "Human study"): a rater who missed more than `max_missed` of the attention checks
answered so far, or whose median response time over the trials past practice is under
`min_rt_ms` (an answer sent without a response time counts as 0 ms). A rater left out is
left out of every model's score."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from statistics import median

from bench.study.config import StudyConfig


@dataclass(frozen=True)
class Exclusions:
    attention: set[str] = field(default_factory=set)  # missed too many attention checks
    fast: set[str] = field(default_factory=set)  # answered faster than the minimum

    @property
    def raters(self) -> set[str]:
        return self.attention | self.fast


def exclusions(
    cfg: StudyConfig, rows: Iterable[tuple[str, bool, bool, float | None]]
) -> Exclusions:
    """Raters to leave out, from (token, is an attention check, correct, rt_ms) of every
    answer past practice (store.quality_rows)."""
    missed: dict[str, int] = defaultdict(int)
    times: dict[str, list[float]] = defaultdict(list)
    for token, check, correct, rt_ms in rows:
        missed[token] += check and not correct
        times[token].append(rt_ms or 0.0)
    attention = {t for t, n in missed.items() if cfg.attention and n > cfg.max_missed}
    fast = {t for t, rts in times.items() if median(rts) < cfg.min_rt_ms}
    return Exclusions(attention, fast)


EXCLUDED = (
    "hype_excluded_raters",
    "hype_excluded_attention",
    "hype_excluded_fast",
    "hype_excluded_judgements",
)


def exclusion_counts(gone: Exclusions, raters: set[str], judgements: int) -> dict[str, float]:
    """A model's columns for the raters left out of its score: how many (of `raters`, those
    who judged it), for which rule (a rater can break both), and their `judgements` of it."""
    counts = (gone.raters & raters, gone.attention & raters, gone.fast & raters)
    return dict(zip(EXCLUDED, [*(float(len(c)) for c in counts), float(judgements)], strict=True))


def exclusion_note(scores: dict[str, float]) -> str:
    """What one model's score left out and why ("" when nothing)."""
    n = int(scores.get("hype_excluded_raters", 0))
    if not n:
        return ""
    attention = int(scores["hype_excluded_attention"])
    fast = int(scores["hype_excluded_fast"])
    judgements = int(scores["hype_excluded_judgements"])
    return (
        f"excluded {n} rater(s) and their {judgements} judgements: {attention} missed "
        f"attention checks, {fast} answered faster than the minimum"
    )
