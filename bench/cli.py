"""The genbench command line: run, report, list (and eval, fid)."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from bench.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmark generative image models on one protocol: run suites, score samples, "
    "build leaderboards.",
)


TrackingUri = Annotated[
    str | None, typer.Option(help="MLflow tracking URI [default: sqlite store in OUT/mlruns]")
]


@app.command()
def run(
    suite_file: Annotated[Path, typer.Argument(help="suite YAML, e.g. suites/digits.yaml")],
    out: Annotated[Path | None, typer.Option(help="output folder [default: reports/SUITE]")] = None,
    tracking_uri: TrackingUri = None,
    data_root: Annotated[Path | None, typer.Option(help="folder with mnist/cifar10 files")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N")] = "auto",
) -> None:
    """Train or load every model of a suite, sample, score, track in MLflow, write the
    leaderboard. Finished jobs are reused; an interrupted run resumes."""
    from bench.report.render import write_report
    from bench.runner import Runner, RunOptions
    from bench.suite import load_suite

    suite = load_suite(suite_file)
    out = out or Path("reports") / suite.name
    runner = Runner(suite, RunOptions(out, tracking_uri, data_root, device))
    results = runner.run()
    boards = write_report(runner.client, out, suite.name)
    print_leaderboards(boards)
    failed = [r for r in results if r.status == "FAILED"]
    reused = sum(r.status == "REUSED" for r in results)
    typer.echo(
        f"\n{len(results)} jobs: {len(results) - len(failed) - reused} run, {reused} reused, "
        f"{len(failed)} failed. Leaderboard: {out}/leaderboard.md|.csv|.html"
    )
    if failed:
        for r in failed:
            typer.echo(f"FAILED {r.job.label}: {r.error}", err=True)
        raise typer.Exit(1)


@app.command()
def report(
    out: Annotated[Path | None, typer.Option(help="folder genbench run wrote")] = None,
    tracking_uri: TrackingUri = None,
    suite: Annotated[str | None, typer.Option(help="only this suite's experiment")] = None,
) -> None:
    """Rebuild the leaderboard (md, csv, html) from MLflow alone."""
    from bench import tracking
    from bench.report.render import write_report

    if out is None:
        if suite is None:
            raise UserError("pass --out DIR (the folder genbench run wrote) or --suite NAME")
        out = Path("reports") / suite
    if tracking_uri is None:
        db = out / "mlruns" / "mlflow.db"
        if not db.exists():
            raise UserError(f"no MLflow store at {db}; run `genbench run` or pass --tracking-uri")
        tracking_uri = tracking.default_tracking_uri(out)
    boards = write_report(tracking.client_for(tracking_uri), out, suite)
    if not boards:
        raise UserError("the MLflow store holds no genbench job runs")
    print_leaderboards(boards)
    typer.echo(f"\nLeaderboard: {out}/leaderboard.md|.csv|.html")


class ListWhat(str, Enum):
    models = "models"
    datasets = "datasets"
    metrics = "metrics"


@app.command("list")
def list_(what: Annotated[ListWhat, typer.Argument(help="models, datasets or metrics")]) -> None:
    """List the registered models, datasets or metrics."""
    from bench.suite import known_names

    for name in known_names()[what.value]:
        typer.echo(name)


def print_leaderboards(boards) -> None:
    from bench.report.render import to_markdown

    typer.echo(to_markdown(boards))


def main() -> None:
    try:
        app()
    except UserError as e:
        typer.echo(f"genbench: error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("genbench: interrupted; run the same command again to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
