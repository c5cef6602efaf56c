"""The live results page's content: per model the scores so far, as `genbench study`
would write them now (excluded raters left out), and counts; nothing that tells raters
apart (no token, no rater number, no per-rater row)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.study import store
from bench.study.hype import minimum_note
from bench.study.results import study_scores


@dataclass(frozen=True)
class ModelRow:
    model: str
    raters: int
    judgements: int
    score: str  # "0.312 [0.25, 0.38]", "-" before there is one
    excluded: str  # "2 (1 missed attention checks, 1 too fast)", "0"
    short: str  # what the score falls short of ("" when nothing)


def live_rows(db: Path) -> list[ModelRow]:
    """One row per model of the study, in its order."""
    meta = store.read_meta(db)
    if meta is None:
        return []
    cfg, models, _ = meta
    scores = study_scores(db)
    key = "hype_inf" if cfg.mode == "inf" else "hype_time_ms"
    return [row(label, key, scores.get(label, {})) for label in models]


def row(label: str, key: str, s: dict[str, float]) -> ModelRow:
    score = "-"
    if key in s:
        unit = " ms" if key == "hype_time_ms" else ""
        score = f"{s[key]:.3g}{unit} [{s[f'{key}_lo']:.3g}, {s[f'{key}_hi']:.3g}]"
    n = int(s.get("hype_excluded_raters", 0))
    excluded = str(n)
    if n:
        attention, fast = int(s["hype_excluded_attention"]), int(s["hype_excluded_fast"])
        excluded += f" ({attention} missed attention checks, {fast} too fast)"
    raters, judgements = int(s.get("hype_raters", 0)), int(s.get("hype_judgements", 0))
    short = minimum_note(s).split(";")[0] if s else ""
    return ModelRow(label, raters, judgements, score, excluded, short)


def rater_progress(db: Path) -> tuple[int, int, int]:
    """(links issued, raters who answered anything, raters who answered every trial)."""
    tokens = store.rater_tokens(db)
    done = [(len(store.read_answers(db, t)), len(store.read_trials(db, t))) for t in tokens]
    return len(tokens), sum(a > 0 for a, _ in done), sum(a == n for a, n in done if n)
