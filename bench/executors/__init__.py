"""Where a suite's jobs run. Every executor runs the same job function
(bench.runner.execute_job) against the same MLflow store; the runner's cache and per-job
locks keep each job exactly once whichever executor ran it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from bench.errors import UserError

if TYPE_CHECKING:
    from bench.runner import JobResult, Runner
    from bench.suite import Job


class Executor(Protocol):
    def run(self, runner: Runner, jobs: list[Job], parent_id: str) -> list[JobResult]: ...


class LocalExecutor:
    """Jobs one after another in this process."""

    def run(self, runner: Runner, jobs: list[Job], parent_id: str) -> list[JobResult]:
        from tqdm.auto import tqdm

        results = []
        for i, job in enumerate(jobs, 1):
            tqdm.write(f"[{i}/{len(jobs)}] {job.label}")
            results.append(runner.run_job(job, parent_id))
        return results


EXECUTORS = ("local",)


def make_executor(name: str, **options) -> Executor:
    if name == "local":
        return LocalExecutor()
    raise UserError(f"unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}")
