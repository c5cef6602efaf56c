"""`genbench study`: set up (or reopen) a study in the output folder and serve it."""

from __future__ import annotations

import json
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from bench.errors import UserError
from bench.study import store
from bench.study.app import Study, create_app
from bench.study.config import StudyConfig, check_config
from bench.study.images import encode_png
from bench.study.plan import REAL, build_pool, rater_trials
from bench.study.results import log_study_scores, study_scores


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
    A study that exists must be reopened with the settings it was created with."""
    from bench.study.sources import file_sources, real_images, study_runs, study_sources

    cfg = check_config(req.cfg)
    if req.raters < 1:
        raise UserError(f"--raters must be at least 1, got {req.raters}")
    run_ids: dict[str, str] = {}
    if req.samples:
        if req.dataset is None:
            raise UserError("--samples needs --dataset NAME (the real images to compare with)")
        sources, dataset = file_sources(req.samples, req.dataset), req.dataset
        if req.models:
            raise UserError(
                "--models selects runs of a suite's output; with --samples, pass "
                "only the files to show"
            )
    else:
        runs = study_runs(req.out, req.models, req.dataset, req.references)
        sources = study_sources(req.out, [r.label for r in runs])
        dataset = runs[0].dataset
        run_ids = {r.label: r.run_id for r in runs}
    real = real_images(dataset)
    models = list(sources)
    db = study_db(req.out, req.name)
    meta = store.read_meta(db)
    if meta is None:
        sizes = {label: len(x) for label, x in sources.items()}
        store.init_study(db, cfg, models, dataset, build_pool(cfg, sizes, len(real)))
    elif meta != (cfg, models, dataset):
        raise UserError(
            f"study {req.name!r} in {req.out} was started with other settings or models "
            f"({meta[2]}: {', '.join(meta[1])}); repeat them, or pass --name NEW"
        )
    pool = store.read_pool(db)
    tokens = store.rater_tokens(db)
    while len(tokens) < req.raters:
        token = secrets.token_urlsafe(24)
        store.add_rater(db, token, rater_trials(cfg, models, pool, token))
        tokens.append(token)
    tensors = {**sources, REAL: real}
    images = {p.id: encode_png(tensors[p.source][p.index], cfg.display_px) for p in pool}
    return Study(db, cfg, images, set(tokens)), run_ids


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

    check_port_free(host, port)
    uvicorn.run(create_app(study), host=host, port=port, log_level="warning")
