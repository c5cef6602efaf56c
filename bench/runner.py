"""The driver of a suite: preflight, the parent run, job specs to an executor. Resumable.

A job counts as done once its MLflow run is FINISHED (bench.worker), so a rerun of the same
suite reuses every finished job and an interrupted one resumes where it stopped.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

from filelock import FileLock, Timeout

from bench.data import load_dataset
from bench.device import resolve_device
from bench.errors import UserError
from bench.executors import Executor
from bench.executors.local import LocalExecutor
from bench.features import resolve_extractor
from bench.job import JobResult, RunOptions, load_checkpoint
from bench.models import build_model, is_conditional, resolve_model
from bench.plan import (
    Plan,
    labels_without_conditional,
    not_writable,
    plan_suite,
    unconditional_entry,
)
from bench.provenance import machine_provenance
from bench.record import Store, open_output_store
from bench.scoring import plan, small_n_warnings
from bench.suite import Suite
from bench.translation.checks import check_model_for
from bench.worker import JobSpec


class Runner:
    """A rejected run leaves nothing behind: the output folder, its MLflow store and its
    locks are created only once preflight has passed (`run`)."""

    def __init__(self, suite: Suite, opts: RunOptions, plan: Plan | None = None):
        """`plan`: the suite's (bench.plan.plan_suite with these options), made here if None."""
        self.suite = suite
        self.opts = opts
        self.device = resolve_device(opts.device)
        self.plan = plan or plan_suite(suite, opts.out_dir, opts.data_root, opts.tracking_uri)
        # a given tracking URI lives outside the output folder: a bad one fails before preflight
        self._store = (
            open_output_store(opts.out_dir, opts.tracking_uri) if opts.tracking_uri else None
        )
        self._exp_id: str | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_output_store(self.opts.out_dir, self.opts.tracking_uri)
        return self._store

    @property
    def exp_id(self) -> str:
        if self._exp_id is None:
            out = self.opts.out_dir
            artifact_root = (out / "mlruns" / "artifacts") if not self.opts.tracking_uri else None
            self._exp_id = self.store.experiment(self.suite.name, artifact_root)
        return self._exp_id

    def preflight(self) -> None:
        """Bad input stops the suite before any training. Past the plan (made from
        declarations before torch loads): every metric's feature spaces can run on each
        dataset, every model builds with its options, every checkpoint reads and fits its
        model, what only a built model tells (a plug-in's classes) agrees with the
        conditional metrics and `labels:` asked for, and every weights file the metrics'
        feature spaces load holds their network (DINOv2, CLIP: names and shapes)."""
        warnings: dict[str, None] = {}  # small-n warnings, in order, once each
        feature_spaces: set[str] = set()
        for dataset in dict.fromkeys(job.dataset for job in self.plan.jobs):
            data = load_dataset(dataset, self.opts.data_root)
            suite = self.suite
            planned = plan(suite.metrics, data, suite.features, suite.n_samples, suite.weights)
            if suite.eval_every is not None:  # what training jobs score on the way
                planned += plan(
                    suite.training_metrics, data, suite.features, suite.eval_n, suite.weights
                )
            feature_spaces |= {e for p in planned for e in p.extractors}
            for line in small_n_warnings(planned, data, suite.n_samples):
                warnings.setdefault(f"warning: {dataset}: {line}")
        conditional = bool(self.plan.conditional)
        for planned_entry in self.plan.entries:
            job, entry = planned_entry.job, planned_entry.job.entry
            data = load_dataset(job.dataset, self.opts.data_root)
            # built untrained, cheaply: an unknown option is caught before anything trains
            cls = resolve_model(entry.ref)
            check_model_for(cls, entry.ref, data)
            model = build_model(cls, data, dict(entry.options), self.device)
            check_declared_conditional(model, cls, data, entry.ref)
            conditional |= is_conditional(model)
            if planned_entry.label_metrics and not is_conditional(model):
                raise UserError(unconditional_entry(planned_entry.label_metrics[0], entry))
            if entry.checkpoint is not None:
                load_checkpoint(model, entry.checkpoint, entry.ref)
        if self.suite.labels is not None and not conditional:
            raise UserError(labels_without_conditional(self.suite))
        check_weights_files(feature_spaces, self.suite.weights)
        for line in warnings:
            print(line, file=sys.stderr, flush=True)

    def run(self, executor: Executor | None = None) -> list[JobResult]:
        self.preflight()
        try:
            self.opts.locks.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(not_writable(self.opts.out_dir, e)) from None
        self.store.set_rank_by(self.exp_id, self.suite.rank_by)
        owner = uuid.uuid4().hex
        with FileLock(str(self._owner_lock(owner))):  # held while this invocation lives
            self.store.close_stale_suite_runs(self.exp_id, self._alive)
            parent = self.store.start_suite_run(
                self.exp_id,
                self.suite.name,
                self.suite.version,
                machine_provenance(self.device),
                self.suite.model_dump_json(),
                owner,
            )
            specs = [JobSpec(job, self.opts, self.exp_id, parent) for job in self.plan.jobs]
            try:
                results = (executor or LocalExecutor()).run(specs)
            except BaseException:
                self.store.end_run(parent, "KILLED")
                raise
            failed = sum(r.status == "FAILED" for r in results)
            self.store.end_run(parent, "FAILED" if failed else "FINISHED")
        self._owner_lock(owner).unlink(missing_ok=True)
        return results

    def _owner_lock(self, owner: str) -> Path:
        return self.opts.locks / f"suite-{owner}.lock"

    def _alive(self, owner: str) -> bool:
        """An invocation lives while it holds its lock (a killed process holds none)."""
        lock = FileLock(str(self._owner_lock(owner)))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return True
        lock.release()
        self._owner_lock(owner).unlink(missing_ok=True)
        return False


def check_weights_files(extractors: set[str], weights: Mapping[str, Path]) -> None:
    """The weights file of each extractor that has one (given in `weights:`, else found where
    it looks) is read and compared with its network's names and shapes; bench.plan saw that
    it exists. A mismatched file fails here, once, not in every job after training."""
    for name in sorted(extractors):
        check = resolve_extractor(name).check_weights
        if check is not None:
            check(weights.get(name))


def check_declared_conditional(model, cls: type, data, ref: str) -> None:
    """Job keys tell conditional models from the class (bench.job.label_source): an instance
    must agree with it."""
    declared = is_conditional(cls) and bool(data.num_classes)
    if is_conditional(model) and not declared:
        raise UserError(
            f"model {ref!r} sets num_classes without declaring it: take num_classes as an "
            "__init__ parameter (genbench passes the dataset's)"
        )
    if declared and not is_conditional(model):
        raise UserError(
            f"model {ref!r} takes num_classes but its num_classes is "
            f"{getattr(model, 'num_classes', None)!r}; set it to the number of classes"
        )
