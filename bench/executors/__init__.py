"""Where a suite's jobs run. Every executor runs the same job function
(bench.runner.execute_job) against the same MLflow store; the runner's cache and per-job
locks keep each job exactly once whichever executor ran it.

`local` runs the jobs one after another in this process; `ray` makes each job a Ray task
(bench/executors/ray.py) and `slurm` a SLURM job through submitit (bench/executors/slurm.py).
Ray and submitit are optional (`pip install 'genbench[scale]'`) and imported only when
asked for.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol

from bench.errors import UserError

if TYPE_CHECKING:
    from bench.runner import JobResult, Runner, RunOptions
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


EXECUTORS = ("local", "ray", "slurm")


def make_executor(
    name: str,
    *,
    ray_address: str | None = None,
    cpus_per_job: float = 1,
    gpus_per_job: float = 0,
    slurm_partition: str | None = None,
    slurm_time: int = 60,
    slurm_mem_gb: float | None = None,
    max_retries: int = 1,
    **extra,
) -> Executor:
    """The executor `name` with the CLI's resource options (ignored by `local`).

    extra: `num_cpus` (CPUs of a local Ray instance; default all), `cluster` (submitit's
    cluster for `slurm`: slurm, or local/debug to try the path without SLURM)."""
    if name == "local":
        return LocalExecutor()
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}")
    if cpus_per_job <= 0:
        raise UserError(f"--cpus-per-job must be positive, got {cpus_per_job}")
    if gpus_per_job < 0:
        raise UserError(f"--gpus-per-job must be 0 or more, got {gpus_per_job}")
    if max_retries < 0:
        raise UserError(f"--max-retries must be 0 or more, got {max_retries}")
    if name == "ray":
        from bench.executors.ray import RayExecutor

        return RayExecutor(
            address=ray_address,
            cpus_per_job=cpus_per_job,
            gpus_per_job=gpus_per_job,
            max_retries=max_retries,
            **extra,
        )
    from bench.executors.slurm import SlurmExecutor

    if slurm_time < 1:
        raise UserError(f"--slurm-time is in minutes and must be at least 1, got {slurm_time}")
    if slurm_mem_gb is not None and slurm_mem_gb <= 0:
        raise UserError(f"--slurm-mem-gb must be positive, got {slurm_mem_gb}")
    if gpus_per_job != int(gpus_per_job) or cpus_per_job != int(cpus_per_job):
        raise UserError("--executor slurm takes whole numbers for --cpus-per-job/--gpus-per-job")
    return SlurmExecutor(
        partition=slurm_partition,
        time_min=slurm_time,
        cpus_per_job=int(cpus_per_job),
        gpus_per_job=int(gpus_per_job),
        mem_gb=slurm_mem_gb,
        max_retries=max_retries,
        **extra,
    )


# -- shared by the executors that run jobs in other processes -----------------------------


def portable_options(opts: RunOptions) -> RunOptions:
    """Options with absolute paths, so that a worker with another working folder (a Ray
    worker, a SLURM task) writes to the same output folder."""
    return dataclasses.replace(
        opts,
        out_dir=opts.out_dir.resolve(),
        data_root=opts.data_root.resolve() if opts.data_root is not None else None,
    )


def progress_line(done: int, total: int, result: JobResult) -> str:
    what = result.status + (f" in {result.seconds:.1f} s" if result.seconds else "")
    if result.error:
        what += f": {result.error}"
    return f"[{done}/{total}] {result.job.label}: {what}"


def lost_job(runner: Runner, job: Job, parent_id: str, error: str) -> JobResult:
    """The result of a job whose worker process died (after its retries). Its MLflow run,
    left RUNNING by the dead process, becomes FAILED with the error, so that the
    leaderboard lists the failure; no other job is touched."""
    from filelock import FileLock, Timeout

    from bench import tracking
    from bench.data import load_dataset
    from bench.runner import JobResult, job_keys

    run_id = None
    try:
        key = job_keys(job, load_dataset(job.dataset, runner.opts.data_root))["job"]
        with FileLock(str(runner.opts.out_dir / "locks" / f"{key}.lock"), timeout=60):
            query = f"tags.`genbench.job_key` = '{key}'"
            for r in tracking.search_runs(runner.client, runner.exp_id, query):
                if (
                    r.info.status == "RUNNING"
                    and r.data.tags.get("mlflow.parentRunId") == parent_id
                ):
                    tracking.set_tags(runner.client, r.info.run_id, {"genbench.error": error})
                    runner.client.set_terminated(r.info.run_id, "FAILED")
                    run_id = r.info.run_id
    except (Timeout, UserError, OSError):
        pass  # the job result below still reports the failure
    return JobResult(job, "FAILED", run_id, error)


def one_line(e: BaseException, limit: int = 300) -> str:
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(e).__name__}: {text}"[:limit]
