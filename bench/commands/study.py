"""`genbench study`: serve a real-or-fake study page (HYPE) for a suite's models and score
the answers into OUT/study and the models' MLflow job runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from bench.study.config import StudyConfig


@dataclass(frozen=True)
class StudyCommand:
    """Which study (`name` under `out`, with `cfg`), of which samples (LABEL=PATH entries,
    or the suite output's models: `models`, else the learned ones plus `references`), and
    where it is served; `score` scores the answers so far without serving."""

    out: Path
    cfg: StudyConfig
    name: str = "default"
    raters: int = 1
    samples: list[str] = field(default_factory=list)
    dataset: str | None = None
    models: str | None = None
    references: str = "one"
    host: str = "127.0.0.1"
    port: int = 8765
    score: bool = False


def run_study(cmd: StudyCommand) -> None:
    """Serve the study until Ctrl-C (unless `cmd.score`), then print and log its scores."""
    from bench.errors import Stopped
    from bench.study.config import check_config, check_references
    from bench.study.hype import minimum_note
    from bench.study.names import samples_args
    from bench.study.quality import exclusion_note
    from bench.study.results import check_study_name

    out, name, cfg, raters, samples, dataset = (
        cmd.out,
        cmd.name,
        cmd.cfg,
        cmd.raters,
        cmd.samples,
        cmd.dataset,
    )
    models, references, host, port, score = (
        cmd.models,
        cmd.references,
        cmd.host,
        cmd.port,
        cmd.score,
    )
    check_config(cfg)  # these checks run before the server's modules (torch among them) load
    check_study_name(name)
    check_references(references)
    samples_args(samples or [])
    from bench.study.serve import (
        StudyRequest,
        check_port_free,
        finish,
        links,
        open_study,
        results_link,
        serve,
    )

    labels = [m.strip() for m in models.split(",") if m.strip()] if models else None
    req = StudyRequest(out, name, cfg, raters, samples or [], dataset, labels, references)
    if not score:
        check_port_free(host, port)  # before the study is created: a refusal writes nothing
    the_study, run_ids = open_study(req)
    if not score:
        typer.echo("Rater links (one per person; a link resumes where its rater stopped):")
        for link in links(the_study, host, port):
            typer.echo(f"  {link}")
        typer.echo("Results so far, for you alone (never send this link to raters):")
        typer.echo(f"  -> {results_link(the_study, host, port)}")
        typer.echo("Ctrl-C stops the server and writes the scores.")
        try:
            serve(the_study, host, port)
        except (Stopped, KeyboardInterrupt):
            pass  # the signal uvicorn passes on after its graceful stop: score the study
    for label, values in finish(req, the_study, run_ids).items():
        shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        notes = [n for n in (exclusion_note(values), minimum_note(values)) if n]
        typer.echo("\n  ! ".join([f"{label}: {shown}", *notes]))
