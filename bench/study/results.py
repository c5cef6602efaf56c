"""A study's scores per model from its answers, and their place on the model's job run."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from bench.errors import UserError
from bench.record import open_output_store
from bench.study import store
from bench.study.config import StudyConfig
from bench.study.hype import hype_infinity, hype_time, study_column
from bench.study.plan import trials_per_rater
from bench.study.quality import exclusion_counts, exclusions
from bench.study.staircase import staircase_input, threshold

# it names the answers file and is part of MLflow metric names (which allow no other)
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_study_name(name: str) -> None:
    if not STUDY_NAME.fullmatch(name):
        raise UserError(
            f"--name {name!r}: a study name is 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def study_scores(db: Path) -> dict[str, dict[str, float]]:
    """Model label -> HYPE-infinity or HYPE-time scores (by the study's mode). Models
    nobody has judged yet are absent. HYPE-time counts only raters who finished a model's
    trials, and no trial whose measured exposure was off by more than a frame. With quality
    controls, the raters they exclude are left out and counted (quality.py); a model whose
    every rater was excluded gets the counts alone."""
    meta = store.read_meta(db)
    if meta is None:
        return {}
    cfg, models, _ = meta
    gone = exclusions(cfg, store.quality_rows(db))
    per_model: dict[str, list[tuple]] = defaultdict(list)
    for row in store.all_judgements(db):
        per_model[row[2]].append(row)
    out: dict[str, dict[str, float]] = {}
    for label in models:
        judged = per_model.get(label, [])
        rows = [r for r in judged if r[0] not in gone.raters]
        counts = {}
        if cfg.quality_controls:
            raters = {r[0] for r in judged}
            counts = exclusion_counts(gone, raters, len(judged) - len(rows))
        scores = model_scores(db, cfg, len(models), label, rows) if rows else None
        if scores is not None or (judged and counts):
            out[label] = (scores or {"hype_raters": 0.0, "hype_judgements": 0.0}) | counts
    return out


def model_scores(
    db: Path, cfg: StudyConfig, n_models: int, label: str, rows: list[tuple]
) -> dict[str, float] | None:
    """One model's scores from its kept judgements (store.all_judgements rows); None for
    HYPE-time before any rater has finished the model's trials."""
    if cfg.mode == "inf":
        tokens, images, real, correct = zip(*(r[:2] + r[3:5] for r in rows), strict=True)
        return hype_infinity(tokens, images, real, correct, seed=cfg.seed)
    by_rater: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for token, _, _, _, correct, flagged, _ in rows:
        by_rater[token].append((bool(correct), bool(flagged)))
    need = trials_per_rater(cfg, n_models) // n_models
    finished = [t for t in by_rater if len(by_rater[t]) >= need]
    if not finished:
        return None
    secret = store.read_secret(db)
    walked = {t: staircase_input(by_rater[t], cfg, secret, t, label) for t in finished}
    scores = hype_time([threshold(walked[t], cfg) for t in finished], seed=cfg.seed)
    kept = sum(len(walked[t]) for t in finished)
    scores["hype_judgements"] = float(kept)
    scores["hype_time_excluded"] = float(len(finished) * need - kept)
    return scores


def log_study_scores(
    out_dir: Path, study: str, scores: dict[str, dict[str, float]], run_ids: dict[str, str]
) -> None:
    """Each model's scores become metrics of the job run whose samples the study showed,
    under the study's name (`hype_inf/NAME`), beside those of the folder's other studies."""
    store = open_output_store(out_dir)
    for label, values in scores.items():
        if label in run_ids:
            named = {study_column(k, study): v for k, v in values.items()}
            store.add_metrics(run_ids[label], named)
