"""`genbench run`: plan a suite, run its jobs on an executor, write the leaderboard."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path

import typer


@dataclass(frozen=True)
class RunRequest:
    """A suite file and where its run goes. `executor` wins over the suite's executor:;
    `executor_flags` (an executor's options given as flags of their own, None when not given)
    lose to `executor_options` (KEY=VALUE) and win over the suite's."""

    suite_file: Path
    out: Path | None = None
    tracking_uri: str | None = None
    data_root: Path | None = None
    device: str = "auto"
    executor: str | None = None
    executor_flags: dict = field(default_factory=dict)
    executor_options: list[str] | None = None


def run_suite(req: RunRequest) -> None:
    """Run the suite and print its leaderboards; exit 1 when a job failed."""
    from bench.suite import load_suite

    suite = load_suite(req.suite_file)  # first: a rejected suite file imports no torch
    out = req.out or Path("reports") / suite.name
    from bench.plan import plan_suite

    plan = plan_suite(suite, out, req.data_root, req.tracking_uri)  # nor do bad data files
    from bench.executors import executor_options, make_executor, suite_executor_options

    chosen = suite.executor
    name = req.executor or (chosen.name if chosen else "local")
    from_suite = chosen.options if chosen and chosen.name == name else {}
    # nor do bad executor options
    options = executor_options(
        name, req.executor_flags, req.executor_options, suite_executor_options(name, from_suite)
    )
    jobs_executor = make_executor(name, **options)
    from bench.job import RunOptions
    from bench.runner import Runner

    runner = Runner(suite, RunOptions(out, req.tracking_uri, req.data_root, req.device), plan)
    results = runner.run(jobs_executor)
    from bench.report.render import to_markdown, write_report  # after preflight's refusals

    boards = write_report(runner.store, out, suite.name)
    typer.echo(to_markdown(boards))
    failed = [r for r in results if r.status == "FAILED"]
    typer.echo(f"\n{run_summary(results)} Leaderboard: {out}/leaderboard.md|.csv|.html")
    if failed:
        for r in failed:
            typer.echo(f"FAILED {r.job.label}: {r.error}", err=True)
        raise typer.Exit(1)


def run_summary(results) -> str:
    """How many jobs were scored now (and whether they trained their model or took it from
    the cache), reused whole from an earlier run, or failed."""
    count = collections.Counter(r.status for r in results)
    fits = collections.Counter(r.fit for r in results if r.status == "FINISHED")
    return (
        f"{len(results)} jobs: {count['FINISHED']} run ({fits['trained']} trained a model, "
        f"{fits['cache']} sampled a cached one), {count['REUSED']} reused (finished before), "
        f"{count['FAILED']} failed."
    )
