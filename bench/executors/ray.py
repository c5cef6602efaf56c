"""Ray executor: every job is a Ray task running bench.worker.run_job.

`address` joins an existing cluster (`ray start --head` there, then `--ray-address auto`
on the head node or `--ray-address HEAD:6379` elsewhere); without it a local Ray instance
is started for this run and stopped after it. Every worker writes to the same output
folder (a shared file system on a multi-machine cluster) and the same MLflow store (an
`mlflow server` on a multi-machine cluster).

Failures stay per job: a job that raises inside run_job comes back as a FAILED
JobResult (its MLflow run says why); a worker process that dies (killed, out of memory,
node lost) is retried by Ray up to `max_retries` times, and if it still dies the job
becomes a FAILED JobResult with Ray's error. Other jobs are never lost.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from bench.errors import UserError
from bench.executors import one_line, portable, progress_line
from bench.worker import JobSpec, lost_job, run_job

if TYPE_CHECKING:
    from bench.job import JobResult


def import_ray():
    # genbench runs offline: no usage-stats upload unless the user opted in explicitly.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise UserError(
            "--executor ray needs Ray: pip install ray (or pip install 'genbench[scale]')"
        ) from None
    return ray


class RayExecutor:
    def __init__(
        self,
        address: str | None = None,
        cpus_per_job: float = 1,
        gpus_per_job: float = 0,
        max_retries: int = 1,
        num_cpus: int | None = None,
    ):
        self.ray = import_ray()
        self.address = address
        self.cpus_per_job = cpus_per_job
        self.gpus_per_job = gpus_per_job
        self.max_retries = max_retries
        self.num_cpus = num_cpus  # of a local instance; None: all cores

    def _connect(self) -> bool:
        """Connect to the cluster (or start a local instance); True when this call did."""
        ray = self.ray
        if ray.is_initialized():
            return False
        # Workers inherit the thread count (bench.threads) through OMP_NUM_THREADS.
        env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        kwargs = {
            "include_dashboard": False,
            "log_to_driver": True,
            "runtime_env": {"env_vars": env},
        }
        try:
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=self.num_cpus, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {self.address!r}" if self.address else "a local Ray"
            raise UserError(f"cannot start or join {where}: {one_line(e)}") from None
        return True

    def run(self, specs: list[JobSpec]) -> list[JobResult]:
        from tqdm.auto import tqdm

        ray = self.ray
        started = self._connect()
        try:
            total = ray.cluster_resources()
            if self.gpus_per_job > total.get("GPU", 0) or self.cpus_per_job > total.get("CPU", 0):
                tqdm.write(  # an autoscaling cluster may still grow; others wait forever
                    f"warning: each job asks for {self.cpus_per_job:g} CPUs and "
                    f"{self.gpus_per_job:g} GPUs, the Ray cluster has "
                    f"{total.get('CPU', 0):g} CPUs and {total.get('GPU', 0):g} GPUs now"
                )
            task = ray.remote(
                num_cpus=self.cpus_per_job,
                num_gpus=self.gpus_per_job,
                max_retries=self.max_retries,
                retry_exceptions=False,  # a job's own errors already come back as FAILED
            )(run_job)
            specs = portable(specs)
            index = {task.options(name=s.label).remote(s): i for i, s in enumerate(specs)}
            tqdm.write(
                f"{len(specs)} jobs submitted to Ray ({self.cpus_per_job:g} CPUs, "
                f"{self.gpus_per_job:g} GPUs each)"
            )
            results: list[JobResult | None] = [None] * len(specs)
            pending = list(index)
            try:
                while pending:
                    ready, pending = ray.wait(pending, num_returns=1)
                    for ref in ready:
                        i = index[ref]
                        results[i] = self._result(ref, specs[i])
                        done = sum(r is not None for r in results)
                        tqdm.write(progress_line(done, len(specs), results[i]))
            except BaseException:
                for ref in pending:
                    ray.cancel(ref, force=True)
                raise
            return results
        finally:
            if started:
                ray.shutdown()

    def _result(self, ref, spec: JobSpec) -> JobResult:
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # raised outside run_job's own handling
            cause = e.cause if isinstance(e.cause, BaseException) else e
            msg = str(cause) if isinstance(cause, UserError) else one_line(cause)
            return lost_job(spec, msg)
        except ray.exceptions.RayError as e:  # the worker died, also on its last retry
            retries = f" (after {self.max_retries} retries)" if self.max_retries else ""
            return lost_job(spec, f"Ray worker lost{retries}: {one_line(e)}")
