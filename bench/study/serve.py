"""`genbench study`: set up (or reopen) a study in the output folder and serve it."""

from __future__ import annotations

import json
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import UserError
from bench.study import store
from bench.study.app import Study, create_app
from bench.study.attention import attention_classes, attention_images
from bench.study.config import StudyConfig, check_config
from bench.study.guard import Guard
from bench.study.names import samples_args
from bench.study.plan import ATTENTION, REAL, build_pool, rater_trials, with_labels
from bench.study.results import check_study_name, log_study_scores, study_scores
from bench.study.secret import new_secret


@dataclass(frozen=True)
class StudyRequest:
    out: Path
    name: str
    cfg: StudyConfig
    raters: int
    samples: list[str]  # LABEL=PATH or PATH; empty: the suite output's cached samples
    dataset: str | None
    models: list[str] | None
    references: str = "one"  # without models: which references (one, all, none)


def study_db(out: Path, name: str) -> Path:
    return out / "study" / f"{name}.sqlite"


def open_study(req: StudyRequest) -> tuple[Study, dict[str, str]]:
    """The study, created on first use, and label -> job run id (empty for samples files).
    A study that exists must be reopened with the settings it was created with. Every
    check runs before anything is written: a refused study leaves no database behind."""
    from bench.study.sources import Source, real_images

    cfg = check_config(req.cfg)
    check_study_name(req.name)
    if req.raters < 1:
        raise UserError(f"--raters must be at least 1, got {req.raters}")
    sources, dataset, run_ids = study_sources_of(req)
    real = real_images(dataset, cfg.show_source)
    labels = shown_classes(cfg, sources, real.labels, dataset)
    models = list(sources)
    db = study_db(req.out, req.name)
    meta = store.read_meta(db)
    if meta is not None and meta != (cfg, models, dataset):
        raise UserError(
            f"study {req.name!r} in {req.out} was started with other settings or models "
            f"({meta[2]}: {', '.join(meta[1])}); repeat them, or pass --name NEW"
        )
    secret = new_secret() if meta is None else store.read_secret(db)
    checks = attention_images(cfg.attention, real.images, secret)
    # beside a source (--show-source), a check is noise beside noise of the sources' statistics
    beside = None if real.beside is None else attention_images(cfg.attention, real.beside, secret)
    if labels is not None:
        labels[ATTENTION] = attention_classes(cfg.attention, real.labels, secret)
    if meta is None:
        sizes = {label: len(s.images) for label, s in sources.items()}
        pool = build_pool(cfg, sizes, len(real.images), secret, labels)
        tokens = []
    else:
        pool = store.read_pool(db)
        pool = pool if labels is None else with_labels(pool, labels)
        tokens = store.rater_tokens(db)
    shown = {**sources, REAL: real, ATTENTION: Source(checks, beside=beside)}
    images = {p.id: shown[p.source].png(p.index, cfg.display_px) for p in pool}
    new = [secrets.token_urlsafe(24) for _ in range(req.raters - len(tokens))]
    raters = {token: rater_trials(cfg, models, pool, secret, token) for token in new}
    if meta is None:
        store.init_study(db, cfg, models, dataset, secret, pool, raters)
    else:
        for token, trials in raters.items():
            store.add_rater(db, token, trials)
    classes = None if labels is None else {p.id: p.label for p in pool}
    owner = store.owner_token(db)
    return Study(db, cfg, images, {*tokens, *new}, secret, classes, owner=owner), run_ids


def study_sources_of(req: StudyRequest) -> tuple[dict, str, dict[str, str]]:
    """(label -> Source, dataset, label -> job run id) of samples files or a suite's output."""
    from bench.study.sources import (
        SANITY,
        SANITY_BESIDE_SOURCE,
        file_sources,
        study_runs,
        study_sources,
    )

    if req.samples:
        if req.dataset is None:
            raise UserError("--samples needs --dataset NAME (the real images to compare with)")
        if req.models:
            raise UserError(
                "--models selects runs of a suite's output; with --samples, pass "
                "only the files to show"
            )
        files = samples_args(req.samples)
        return file_sources(files, req.dataset, req.cfg.show_source), req.dataset, {}
    sanity = SANITY_BESIDE_SOURCE if req.cfg.show_source else SANITY
    runs = study_runs(req.out, req.models, req.dataset, req.references, sanity)
    if REAL in (r.label for r in runs):
        raise UserError(
            f"{req.out} has a model labelled {REAL!r}, the study's name for its real images; "
            "leave it out with --models"
        )
    # of the dataset asked for, not the first one
    sources = study_sources(req.out, runs, req.cfg.show_source)
    return sources, runs[0].dataset, {r.label: r.run_id for r in runs}


def shown_classes(
    cfg: StudyConfig, sources: dict, real_labels: np.ndarray | None, dataset: str
) -> dict[str, np.ndarray] | None:
    """Source -> class of each of its images, for a study that shows classes; else None."""
    if not cfg.show_class:
        return None
    if real_labels is None:
        raise UserError(f"--show-class: dataset {dataset!r} has no classes")
    for label, source in sources.items():
        if source.labels is None:
            raise UserError(
                f"--show-class needs the class asked of every generated image; model "
                f"{label!r} has none (an unconditional model, or an .npz without `labels`)"
            )
    return {**{label: s.labels for label, s in sources.items()}, REAL: real_labels}


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as uvicorn binds: connections of a killed server left in TIME_WAIT do not count
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            msg = f"cannot listen on {host}:{port} ({e.strerror}); pass --port N"
            raise UserError(msg) from None


def links(study: Study, host: str, port: int) -> list[str]:
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    return [f"http://{shown}:{port}/s/{t}" for t in store.rater_tokens(study.db)]


def results_link(study: Study, host: str, port: int) -> str:
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    return f"http://{shown}:{port}/results/{study.owner}"


def finish(req: StudyRequest, study: Study, run_ids: dict[str, str]) -> dict:
    """Score the answers so far; write them next to the study and onto the job runs."""
    scores = study_scores(study.db)
    path = study.db.with_name(f"{req.name}-scores.json")
    path.write_text(json.dumps(scores, indent=2, sort_keys=True))
    if run_ids:
        log_study_scores(req.out, req.name, scores, run_ids)
    return scores


def serve(study: Study, host: str, port: int) -> None:
    import uvicorn

    app = Guard(create_app(study), study.tokens, study.owner)
    uvicorn.run(app, host=host, port=port, log_level="warning")
