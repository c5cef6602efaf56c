"""SLURM executor through submitit: the suite's jobs go out as one SLURM job array, each
array task running bench.worker.run_job with the partition, time limit, CPUs, GPUs
and memory from the CLI. submitit's logs and pickles land in OUT/submitit/.

The output folder must be on a file system the compute nodes share (it holds the cache,
the locks and, by default, the SQLite MLflow store; prefer `mlflow server` for many
nodes). A task that is preempted or hits its time limit is requeued by submitit and
resumes from the runner's cache; a task that dies is resubmitted up to `max_retries`
times and then becomes a FAILED JobResult. `cluster="local"` (environment variable
GENBENCH_SUBMITIT_CLUSTER=local) runs the same path as local processes, without SLURM.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import TYPE_CHECKING

from bench.errors import UserError
from bench.executors import one_line, portable, progress_line
from bench.worker import JobSpec, lost_job, run_job

if TYPE_CHECKING:
    from bench.job import JobResult


def import_submitit():
    try:
        import submitit
    except ImportError:
        raise UserError(
            "--executor slurm needs submitit: pip install submitit "
            "(or pip install 'genbench[scale]')"
        ) from None
    return submitit


submitit = import_submitit()


class JobTask(submitit.helpers.Checkpointable):
    """run_job as a submitit callable; on preemption or timeout submitit requeues the
    same call (Checkpointable), which resumes from the job cache."""

    def __call__(self, spec: JobSpec) -> JobResult:
        return run_job(spec)


class SlurmExecutor:
    def __init__(
        self,
        partition: str | None = None,
        time_min: int = 60,
        cpus_per_job: int = 1,
        gpus_per_job: int = 0,
        mem_gb: float | None = None,
        max_retries: int = 1,
        cluster: str | None = None,
        array_parallelism: int | None = None,
        poll_seconds: float | None = None,
    ):
        self.cluster = cluster or os.environ.get("GENBENCH_SUBMITIT_CLUSTER", "slurm")
        if self.cluster not in ("slurm", "local", "debug"):
            raise UserError(
                f"submitit cluster {self.cluster!r}: choose slurm, local or debug "
                "(GENBENCH_SUBMITIT_CLUSTER)"
            )
        if self.cluster == "slurm" and shutil.which("sbatch") is None:
            raise UserError(
                "--executor slurm: sbatch not found; run genbench on a SLURM login node "
                "(or use --executor local or ray)"
            )
        self.partition = partition
        self.time_min = time_min
        self.cpus_per_job = cpus_per_job
        self.gpus_per_job = gpus_per_job
        self.mem_gb = mem_gb
        self.max_retries = max_retries
        self.array_parallelism = array_parallelism
        self.poll_seconds = poll_seconds or (10.0 if self.cluster == "slurm" else 0.5)

    def executor(self, spec: JobSpec):
        folder = spec.opts.out_dir.resolve() / "submitit" / "%j"
        ex = submitit.AutoExecutor(folder=folder, cluster=self.cluster)
        params = {
            "name": f"genbench-{spec.job.suite.name}",
            "timeout_min": self.time_min,
            "nodes": 1,
            "tasks_per_node": 1,
            "cpus_per_task": self.cpus_per_job,
            "gpus_per_node": self.gpus_per_job,
        }
        if self.mem_gb is not None:
            params["mem_gb"] = self.mem_gb
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.array_parallelism:
            params["slurm_array_parallelism"] = self.array_parallelism
        ex.update_parameters(**params)
        return ex

    def run(self, specs: list[JobSpec]) -> list[JobResult]:
        from tqdm.auto import tqdm

        if not specs:
            return []
        specs = portable(specs)
        ex = self.executor(specs[0])
        task = JobTask()
        n = len(specs)
        try:
            submitted = ex.map_array(task, specs)
        except Exception as e:  # sbatch refused: bad partition, time, memory, ...
            raise UserError(f"submitting the jobs failed: {one_line(e)}") from None
        tqdm.write(
            f"{n} jobs submitted as {self.cluster} job array {submitted[0].job_id}; "
            f"logs in {specs[0].opts.out_dir / 'submitit'}"
        )
        active = dict(enumerate(submitted))
        tries = dict.fromkeys(range(n), 0)
        results: list[JobResult | None] = [None] * n
        try:
            while active:
                for i, sj in list(active.items()):
                    if not sj.done():
                        continue
                    del active[i]
                    if self.cluster != "slurm":  # no network file system to wait for
                        sj._results_timeout_s = 1
                    try:
                        result = sj.result()
                    except Exception as e:
                        error = self._error(sj, e)
                        if tries[i] < self.max_retries:
                            tries[i] += 1
                            tqdm.write(f"  {specs[i].label}: {error}; retry {tries[i]}")
                            active[i] = ex.submit(task, specs[i])
                            continue
                        result = lost_job(specs[i], error)
                    results[i] = result
                    done = sum(r is not None for r in results)
                    tqdm.write(progress_line(done, n, result))
                if active:
                    time.sleep(self.poll_seconds)
        except BaseException:
            for sj in active.values():
                sj.cancel(check=False)
            raise
        return results

    @staticmethod
    def _error(sj, e: Exception) -> str:
        if isinstance(e, submitit.core.utils.FailedJobError):  # raised: last traceback line
            lines = [line for line in str(e).strip().splitlines() if line.strip()]
            return lines[-1].strip()[:300] if lines else type(e).__name__
        state = getattr(sj, "state", "unknown")
        return f"submitit job {sj.job_id} died (state {state}); see {sj.paths.stderr}"
