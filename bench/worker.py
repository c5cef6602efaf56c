"""Runs one job spec in whatever process this is (the driver, a local worker process, a Ray
worker, a SLURM task): take the job's lock, reuse it when it is done, else start its run,
compute its record and write it. Every executor calls `run_job`; a per-job file lock keeps
each job exactly once.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from bench.cache import Cache
from bench.data import load_dataset
from bench.device import resolve_device
from bench.errors import UserError, first_line
from bench.job import JobResult, RunOptions, compute, model_class, new_record
from bench.plugins import import_plugin
from bench.provenance import machine_provenance
from bench.record import Store, open_output_store
from bench.suite import Job


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs, picklable."""

    job: Job
    opts: RunOptions
    exp_id: str
    parent_id: str

    @property
    def label(self) -> str:
        return self.job.label


@functools.cache
def store_for(opts: RunOptions) -> Store:
    return open_output_store(opts.out_dir, opts.tracking_uri)


@functools.cache
def _machine(device: str) -> dict[str, str]:
    return machine_provenance(resolve_device(device))


def run_job(spec: JobSpec) -> JobResult:
    job, opts = spec.job, spec.opts
    start = time.perf_counter()
    store = store_for(opts)
    device = resolve_device(opts.device)
    try:
        for module in job.suite.plugins:  # a worker process has not read the suite file
            import_plugin(module)
        data = load_dataset(job.dataset, opts.data_root)
        cls = model_class(job)
        record = new_record(job, data, _machine(opts.device), cls)
    except UserError as e:
        tqdm.write(f"  FAILED: {e}")
        return JobResult(job, "FAILED", error=str(e))
    with FileLock(str(opts.lock_path(record.job_key))):
        done = store.finished_jobs(spec.exp_id)
        if record.job_key in done:
            tqdm.write("  done before: reusing its MLflow run")
            return JobResult(job, "REUSED", done[record.job_key])
        store.close_stale_runs(spec.exp_id, record.job_key)
        run_id = store.start_job(spec.exp_id, record, spec.parent_id)
        try:
            compute(job, data, record, Cache(opts.out_dir / "cache"), device, cls)
            store.finish_job(record)
        except Exception as e:
            msg = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
            msg = first_line(msg) or type(e).__name__
            store.fail_job(run_id, msg)
            tqdm.write(f"  FAILED: {msg}")
            return JobResult(job, "FAILED", run_id, msg, time.perf_counter() - start)
        except BaseException:
            store.fail_job(run_id, "", "KILLED")
            raise
    fit = "none" if record.source != "trained" else "cache" if record.fit_cached else "trained"
    return JobResult(job, "FINISHED", run_id, seconds=time.perf_counter() - start, fit=fit)


def lost_job(spec: JobSpec, error: str) -> JobResult:
    """The result of a job whose worker process died (after its retries). Its MLflow run,
    left RUNNING by the dead process, becomes FAILED with the error, so that the
    leaderboard lists the failure; no other job is touched."""
    run_id = None
    try:
        data = load_dataset(spec.job.dataset, spec.opts.data_root)
        key = new_record(spec.job, data, {}, model_class(spec.job)).job_key
        with FileLock(str(spec.opts.lock_path(key)), timeout=60):
            run_id = store_for(spec.opts).fail_lost_job(spec.exp_id, key, spec.parent_id, error)
    except (Timeout, UserError, OSError):
        pass  # the job result below still reports the failure
    return JobResult(spec.job, "FAILED", run_id, error)
