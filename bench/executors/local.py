"""The local executor: a suite's jobs on this machine, up to `jobs` of them at once.

With one job at a time they run one after another in this process, in suite order. With
more, jobs finished before are reused here and the others go to as many worker processes
(spawned, so each is a fresh interpreter with one CPU thread, bench.threads), each running
one job at a time through bench.worker.run_job, as Ray and SLURM workers do. This process:

- starts the jobs expected to take longest first (`dispatch_order`);
- holds back a job whose trained model another running job is fitting (same fit key: a
  DDIM, guidance or truncation sweep) until that job ends, then it loads the fit; the fit
  key's lock (bench.job.fit_or_load) keeps it trained once whoever runs it;
- prints a line when a job starts and when it ends; what a worker prints (metrics, a line
  per progress bar every 30 s, warnings) comes line by line, tagged with its job's label;
- on SIGTERM or Ctrl-C stops every worker with SIGTERM, so that their running jobs' runs
  become KILLED as in a single process, and waits for them;
- makes a job whose worker died (SIGKILL, out of memory) FAILED, as bench.worker.lost_job
  does for Ray and SLURM, and starts another worker for the jobs left.

A worker whose driver was killed (SIGKILL) stops its job (KILLED) and exits within a
second, so the next invocation finds no stray process holding a job's lock for long.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING

from bench.errors import Stopped, UserError
from bench.executors import one_line, progress_line

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from bench.job import JobResult
    from bench.worker import JobSpec

# Relative costs, for the order only. A suite's budget is the same for every family, and
# training dominates: on the default suite a trained family's job takes 100-140 s, one
# that only samples and scores (a reference, a sweep's other points) 5-20 s.
TRAIN_COST, SCORE_COST = 10, 1
STOP_WAIT_S = 60  # for a stopped worker to mark its run KILLED, before SIGKILL
PARENT_POLL_S = 1.0


class LocalExecutor:
    def __init__(self, jobs: int = 1):
        self.jobs = jobs

    def run(self, specs: list[JobSpec]) -> list[JobResult]:
        from tqdm.auto import tqdm

        from bench.worker import run_job

        if self.jobs == 1:
            results = []
            for i, spec in enumerate(specs, 1):
                tqdm.write(f"[{i}/{len(specs)}] {spec.label}")
                results.append(run_job(spec))
            return results
        return Pool(specs, self.jobs).run()


@dataclass
class Worker:
    process: BaseProcess
    conn: Connection
    job: int | None = None  # the index of the job it runs


class Pool:
    """One parallel run of a suite's jobs (see the module docstring)."""

    def __init__(self, specs: list[JobSpec], jobs: int):
        from tqdm.auto import tqdm

        self.specs, self.jobs, self.write = specs, jobs, tqdm.write
        self.results: list[JobResult | None] = [None] * len(specs)
        self.keys = [job_keys_of(s) for s in specs]
        self.fit_keys = [shared_fit(s, k) for s, k in zip(specs, self.keys, strict=True)]
        self.workers: list[Worker] = []
        self.fitting: set[str | None] = set()  # fit keys of jobs started
        self.settled: set[str] = set()  # fit keys of jobs ended: their fit is cached
        self.context = multiprocessing.get_context("spawn")

    def run(self) -> list[JobResult]:
        queue = self._reuse_finished()
        queue = dispatch_order(self.specs, self.fit_keys, queue)
        if queue:
            n = min(self.jobs, len(queue))
            self.write(f"{len(queue)} jobs, up to {n} at once in worker processes")
        try:
            while queue or self.workers_busy():
                self._dispatch(queue)
                self._collect()
        except BaseException:
            self._stop()
            raise
        self._close()
        return self.results

    def _reuse_finished(self) -> list[int]:
        """Jobs an earlier run finished are reused here, without a worker (a finished run
        stays finished: no lock needed); the indices of the others."""
        from bench.job import JobResult
        from bench.worker import store_for

        if not self.specs:
            return []
        done = store_for(self.specs[0].opts).finished_jobs(self.specs[0].exp_id)
        left = []
        for i, (spec, keys) in enumerate(zip(self.specs, self.keys, strict=True)):
            if keys is not None and keys["job"] in done:
                self._finish(i, JobResult(spec.job, "REUSED", done[keys["job"]]))
            else:
                left.append(i)
        return left

    def workers_busy(self) -> bool:
        return any(w.job is not None for w in self.workers)

    def _dispatch(self, queue: list[int]) -> None:
        """Give each idle worker (up to `jobs`, started as needed) the first job it may run."""
        while queue:
            i = next((i for i in queue if self._may_start(i)), None)
            if i is None:
                return
            worker = next((w for w in self.workers if w.job is None), None)
            if worker is None:
                if len(self.workers) >= self.jobs:
                    return
                worker = self._start_worker()
            queue.remove(i)
            self.fitting.add(self.fit_keys[i])
            worker.job = i
            self.write(f"started {self.specs[i].label}")
            try:
                worker.conn.send(self.specs[i])
            except OSError:
                pass  # it died: _collect reports the job lost

    def _may_start(self, i: int) -> bool:
        key = self.fit_keys[i]
        return key is None or key in self.settled or key not in self.fitting

    def _start_worker(self) -> Worker:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(
            target=serve, args=(theirs, os.getpid()), name="genbench-worker"
        )
        process.start()
        theirs.close()
        worker = Worker(process, ours)
        self.workers.append(worker)
        return worker

    def _collect(self) -> None:
        """Wait for workers to end their jobs (or die); record what they report."""
        from bench.worker import lost_job

        busy = [w for w in self.workers if w.job is not None]
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
        for w in busy:
            if w.conn not in ready and w.process.sentinel not in ready:
                continue
            i, w.job = w.job, None
            result = receive(w.conn)
            if result is None or w.process.sentinel in ready:  # it ended
                self._retire(w)
            if result is None:
                error = f"worker process died ({exit_reason(w.process)})"
                result = lost_job(self.specs[i], error)
            self._finish(i, result)

    def _retire(self, worker: Worker) -> None:
        worker.process.join()
        worker.conn.close()
        self.workers.remove(worker)

    def _finish(self, i: int, result: JobResult) -> None:
        self.results[i] = result
        key = self.fit_keys[i]
        if key is not None:
            self.settled.add(key)
        done = sum(r is not None for r in self.results)
        self.write(progress_line(done, len(self.specs), result))

    def _close(self) -> None:
        for w in self.workers:
            try:
                w.conn.send(None)  # no more jobs: the worker returns
            except OSError:
                pass
        for w in self.workers:
            w.process.join(STOP_WAIT_S)
            if w.process.is_alive():
                w.process.kill()
            w.conn.close()

    def _stop(self) -> None:
        """SIGTERM to every worker: a running job's run becomes KILLED; then wait."""
        for w in self.workers:
            if w.process.is_alive():
                w.process.terminate()
        for w in self.workers:
            w.process.join(STOP_WAIT_S)
            if w.process.is_alive():  # its run stays RUNNING: the next invocation closes it
                w.process.kill()
                w.process.join()


def receive(conn: Connection) -> JobResult | None:
    """What a worker sent, or None when it died without sending."""
    try:
        return conn.recv() if conn.poll() else None
    except (EOFError, OSError):
        return None


def exit_reason(process: BaseProcess) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def job_keys_of(spec: JobSpec) -> dict[str, str] | None:
    """The job's keys (bench.job.job_keys), or None when its dataset cannot be loaded
    (its worker then reports why)."""
    from bench.data import load_dataset
    from bench.job import job_keys, model_class

    try:
        data = load_dataset(spec.job.dataset, spec.opts.data_root)
        return job_keys(spec.job, data, model_class(spec.job))
    except UserError:
        return None


def shared_fit(spec: JobSpec, keys: dict[str, str] | None) -> str | None:
    """The fit key of a job that may train a model other jobs share; None for jobs that
    train nothing (a samples file, a checkpoint)."""
    entry = spec.job.entry
    if keys is None or entry.samples is not None or entry.checkpoint is not None:
        return None
    return keys["fit"]


def dispatch_order(
    specs: Sequence[JobSpec], fit_keys: Sequence[str | None], indices: Sequence[int]
) -> list[int]:
    """`indices` of `specs`, the longest work first. Jobs that share a fit key form one
    group, led by the first of them in suite order (it trains; the others load its fit);
    a group's cost is TRAIN_COST if it trains a model that is no reference, plus
    SCORE_COST per job. Groups go by cost, most first (a sweep's model before a single
    family's, families before references and samples files), ties in suite order."""
    from bench.models import is_pretrained, is_reference, resolve_model

    groups: dict[str | int, list[int]] = {}
    for i in indices:
        groups.setdefault(fit_keys[i] or i, []).append(i)

    def cost(members: list[int]) -> int:
        entry = specs[members[0]].job.entry
        cls = fit_keys[members[0]] is not None and resolve_model(entry.ref)
        trains = bool(cls) and not is_reference(cls) and not is_pretrained(cls)
        return TRAIN_COST * trains + SCORE_COST * len(members)

    ranked = sorted(groups.values(), key=lambda members: (-cost(members), members[0]))
    return [i for members in ranked for i in members]


# -- in the worker process ----------------------------------------------------------------


def serve(conn: Connection, parent: int) -> None:
    """A worker: run the job specs the driver sends, one at a time, until it sends None,
    its connection closes or SIGTERM arrives (the running job's run becomes KILLED)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the driver, which stops us
    signal.signal(signal.SIGTERM, _stop)
    from bench.threads import configure_threads

    configure_threads(trains=True)  # before torch loads
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    from bench.progress import tagged_output
    from bench.worker import lost_job, run_job

    try:
        while (spec := conn.recv()) is not None:
            with tagged_output(spec.label):
                try:
                    result = run_job(spec)
                except Exception as e:  # outside the job's own handling (its store, say)
                    msg = str(e) if isinstance(e, UserError) else one_line(e)
                    result = lost_job(spec, msg)
            conn.send(result)
    except (Stopped, EOFError, OSError):
        pass


def _stop(signum: int, frame) -> None:
    # A second signal must not cut short marking the run KILLED.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stopped(signum)


def _watch_parent(parent: int) -> None:
    """SIGTERM to this worker once its driver is gone (killed with SIGKILL)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)
