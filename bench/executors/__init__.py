"""Where a suite's jobs run. Executors take picklable job specs (bench.worker.JobSpec),
never the runner, and every one runs the same function (bench.worker.run_job) against the
same MLflow store; the cache and per-job locks keep each job exactly once whichever
executor ran it.

`local` runs the jobs on this machine, up to `jobs` at once in worker processes
(bench/executors/local.py); `ray` makes each job a Ray task (bench/executors/ray.py) and
`slurm` a SLURM job through submitit (bench/executors/slurm.py). Ray and submitit are
optional (`pip install 'genbench[scale]'`) and imported only when asked for. Choosing and
checking an executor imports no torch, so a bad option is refused fast.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol

from bench.errors import UserError, first_line

if TYPE_CHECKING:
    from bench.job import JobResult
    from bench.worker import JobSpec


class Executor(Protocol):
    def run(self, specs: list[JobSpec]) -> list[JobResult]: ...


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
    jobs: int | None = None,
    **extra,
) -> Executor:
    """The executor `name` with the CLI's options: `jobs` for `local` (default: one per
    physical core), the resource options for the others.

    extra: `num_cpus` (CPUs of a local Ray instance; default all), `cluster` (submitit's
    cluster for `slurm`: slurm, or local/debug to try the path without SLURM)."""
    if name == "local":
        from bench.executors.local import LocalExecutor
        from bench.threads import available_cores

        if jobs is not None and jobs < 1:
            raise UserError(f"--jobs must be 1 or more, got {jobs}")
        return LocalExecutor(jobs or available_cores())
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


def portable(specs: list[JobSpec]) -> list[JobSpec]:
    """Specs with absolute paths, so that a worker with another working folder (a Ray
    worker, a SLURM task) writes to the same output folder."""
    opts = specs[0].opts if specs else None
    if opts is None:
        return specs
    opts = dataclasses.replace(
        opts,
        out_dir=opts.out_dir.resolve(),
        data_root=opts.data_root.resolve() if opts.data_root is not None else None,
    )
    return [dataclasses.replace(s, opts=opts) for s in specs]


def progress_line(done: int, total: int, result: JobResult) -> str:
    what = result.status + (f" in {result.seconds:.1f} s" if result.seconds else "")
    if result.error:
        what += f": {result.error}"
    return f"[{done}/{total}] {result.job.label}: {what}"


def one_line(e: BaseException, limit: int = 300) -> str:
    return f"{type(e).__name__}: {first_line(e)}"[:limit]
