"""The job record and the one owner of the MLflow schema.

A `JobRecord` is what a finished (or failed) job is: its keys, labels, params, metrics,
provenance, artifacts and status. `Store` alone writes records to MLflow (tags, params,
metrics, artifacts, run status) and reads them back; the runner, the workers and the report
see records, never MLflow. One experiment per suite, one parent run per suite invocation,
one child run per job.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import sqlite3
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from filelock import FileLock

from bench.cache import atomic_write_bytes
from bench.errors import UserError, first_line

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
warnings.filterwarnings("ignore", module="mlflow")

JOB_KIND, SUITE_KIND = "job", "suite"
RANK_BY_TAG = "genbench.rank_by"
# record field -> MLflow tag; everything else a record holds is a param, metric, artifact,
# or a provenance tag (machine provenance as is, extractor provenance under genbench.)
IDENTITY_TAGS = {
    "job_key": "genbench.job_key",
    "fit_key": "genbench.fit_key",  # rows that share it share one trained model
    "samples_key": "genbench.samples_key",
    "suite": "genbench.suite",
    "suite_version": "genbench.suite_version",
    "dataset": "genbench.dataset",
    "dataset_hash": "genbench.dataset_hash",
    "model": "genbench.model",
    "model_ref": "genbench.model_ref",
    "source": "genbench.source",
    "seed": "genbench.seed",
    # the user's own inputs: "" where the job has none
    "model_version": "genbench.model_version",  # dist==version of the plug-in's package
    "model_source_sha256": "genbench.model_source_sha256",  # of the model class's module
    "checkpoint_sha256": "genbench.checkpoint_sha256",  # or a pretrained model's file/folder
    "samples_sha256": "genbench.samples_sha256",  # of the file, or of a folder's files
}
RESULT_TAGS = {
    "budget_spent_steps": "budget_spent_steps",
    "budget_spent_seconds": "budget_spent_seconds",
    "steps_from": "steps_from",  # returned (Spent), progress (highest step) or unknown
    "fit_cached": "fit_cached",
    "nfe": "nfe",
    "sample_options": "sample_options",
    "sweep_options": "sweep_options",
    "kept_step": "kept_step",  # keep: best
}
# the protocol, per job (eval_every and keep: a trained job that scored itself on the way)
BUDGET_PARAMS = ("n_samples", "budget_steps", "budget_seconds", "eval_every", "keep")
USER_INPUTS = ("model_version", "model_source_sha256", "checkpoint_sha256", "samples_sha256")
MACHINE_PREFIXES = ("version.", "git_commit", "python", "torch_cuda", "device", "hostname")
FEATURE_PREFIX = "feature."  # extractor provenance: weights sha256, classifier accuracy
LOSS_KEY = "train_loss"
EVAL_PREFIX = "during_fit."  # metric histories of in-training evaluation, by step


@dataclass
class JobRecord:
    # identity, known before the job runs
    job_key: str
    fit_key: str  # "none" for a samples file (nothing trained)
    samples_key: str
    suite: str
    suite_version: str
    dataset: str
    dataset_hash: str
    model: str  # the leaderboard label
    model_ref: str  # registry name, module:Class, or "samples-file"
    source: str  # trained, checkpoint, pretrained (an exported file or pipeline) or samples-file
    seed: int
    reference: bool = False  # a known-answer model: its own leaderboard table
    model_version: str = ""
    model_source_sha256: str = ""
    checkpoint_sha256: str = ""
    samples_sha256: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, str] = field(default_factory=dict)  # versions, device, commit, ...
    # results
    metrics: dict[str, float] = field(default_factory=dict)
    features: dict[str, str | float] = field(default_factory=dict)  # extractor provenance
    budget_spent_steps: int | None = None
    budget_spent_seconds: float | None = None
    steps_from: str | None = None  # for trained models
    fit_cached: bool | None = None
    nfe: str | None = None
    sample_options: str | None = None  # JSON
    sweep_options: str | None = None  # JSON: the model's SWEEP_OPTIONS (option -> symbol)
    timings: dict[str, float] = field(default_factory=dict)
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    # metrics during training (suite eval_every): (step, {column: value}), and the step whose
    # model was kept by `keep: best` (None: the last)
    eval_history: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    kept_step: int | None = None
    artifacts: dict[str, bytes] = field(default_factory=dict)  # file name -> content
    # where it lives in MLflow (set by Store)
    status: str = "RUNNING"
    error: str | None = None
    run_id: str | None = None
    start_time: int = 0
    rank_by: list[str] = field(default_factory=list)  # the suite's ranking (experiment)

    @property
    def provenance(self) -> dict[str, str]:
        """Everything recorded about how the numbers were made, flat, for the report."""
        out = {"suite_version": self.suite_version, "dataset_hash": self.dataset_hash}
        out.update({k: str(self.params[k]) for k in BUDGET_PARAMS if k in self.params})
        out.update({f: getattr(self, f) for f in USER_INPUTS if getattr(self, f)})
        out.update(self.machine)
        out.update({k: str(v) for k, v in self.features.items()})
        return out

    def tags(self) -> dict[str, str]:
        tags = {"genbench.kind": JOB_KIND, "genbench.reference": str(self.reference).lower()}
        tags.update({tag: str(getattr(self, f)) for f, tag in IDENTITY_TAGS.items()})
        tags.update(self.machine)
        return tags

    def result_tags(self) -> dict[str, str]:
        tags = {}
        for f, tag in RESULT_TAGS.items():
            value = getattr(self, f)
            if isinstance(value, bool):
                tags[tag] = str(value).lower()
            elif isinstance(value, float):
                tags[tag] = f"{value:.1f}"
            elif value is not None:
                tags[tag] = str(value)
        tags.update({f"{FEATURE_PREFIX}{k}": str(v) for k, v in self.features.items()})
        tags.update({f"time.{k}": f"{v:.2f}" for k, v in self.timings.items()})
        return tags


def default_tracking_uri(out_dir: Path) -> str:
    return f"sqlite:///{(out_dir / 'mlruns' / 'mlflow.db').resolve()}"


def open_output_store(out_dir: Path, tracking_uri: str | None = None) -> Store:
    """The store of an output folder: its own SQLite file and artifact folder, or the given
    tracking URI (whose artifacts live wherever that server keeps them)."""
    if tracking_uri is not None:
        return Store(tracking_uri)
    return Store(default_tracking_uri(out_dir), out_dir.resolve() / "mlruns" / "artifacts")


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """An MLflow server that does not answer fails in seconds, not after MLflow's minutes
    of retries."""
    parsed = urlparse(uri)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as e:
        raise UserError(
            f"cannot reach the MLflow server at {uri} ({e.strerror or e}); start it "
            "(`mlflow server ...`) or pass another --tracking-uri"
        ) from None


# MLflow's own tracking-store schemes (mlflow.tracking._tracking_service.utils
# ._tracking_store_registry; tests/test_record.py checks the installed MLflow has no other)
MLFLOW_SCHEMES = frozenset(
    [
        "",
        "databricks",
        "databricks-uc",
        "file",
        "http",
        "https",
        "mssql",
        "mysql",
        "postgresql",
        "sqlite",
        "uc",
    ]
)


def check_tracking_uri(uri: str) -> None:
    """What can be told of a tracking URI before MLflow loads (about two seconds): a refused
    run stays fast."""
    check_scheme(uri)
    if uri.startswith(("http://", "https://")):
        check_reachable(uri)
    if uri.startswith("sqlite:") and not uri.removeprefix("sqlite:").strip("/"):
        raise UserError(f"tracking URI {uri!r} names no database file; e.g. sqlite:///PATH.db")
    db = sqlite_file(uri)
    if db is not None and db.exists() and not db.is_file():
        # MLflow would retry opening it for about 100 s before it fails
        what, example = ("a folder", db / "mlflow.db") if db.is_dir() else ("not a file", "PATH.db")
        raise UserError(
            f"tracking URI {uri!r}: {db} is {what}; name a database file, e.g. sqlite:///{example}"
        )


def check_scheme(uri: str) -> None:
    """A tracking URI whose scheme no MLflow store handles (nor a plug-in's, entry-point group
    mlflow.tracking_store) is refused without loading MLflow."""
    scheme = urlparse(uri).scheme.split("+")[0].lower()
    if len(scheme) <= 1:  # a path, or a Windows drive letter
        return
    plugins = {ep.name for ep in entry_points(group="mlflow.tracking_store")}
    if scheme not in MLFLOW_SCHEMES | plugins:
        raise UserError(
            f"cannot open MLflow tracking URI {uri!r}: no MLflow store handles {scheme}://; "
            "use sqlite:///PATH.db, http(s)://HOST:PORT or a folder"
        )


SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


def sqlite_file(uri: str) -> Path | None:
    """The database file of a sqlite:/// tracking URI; None for any other URI."""
    path = uri.removeprefix("sqlite:///").split("?")[0] if uri.startswith("sqlite:///") else ""
    return Path(path).resolve() if path not in ("", ":memory:") else None


def prepare_sqlite_store(db: Path) -> None:
    """A SQLite store is created beside its path and renamed into place once MLflow has
    migrated it fully: MLflow's migrations commit one by one, so a creation stopped midway (a
    signal, a full disk) would leave a store that no later MLflow can open. A store left
    half-migrated that holds nothing (by genbench before this, or by MLflow) is rebuilt so.
    Called holding the store's init lock."""
    if db.exists() and not (db.is_file() and _half_made(db)):
        return
    part = db.with_name(db.name + ".creating")
    try:
        _remove(part, "", *SQLITE_SIDE_FILES)  # what a killed creation left
        _migrate(part)
        _remove(db, *SQLITE_SIDE_FILES)  # a journal left there would be rolled into the new one
        os.replace(part, db)
    except BaseException:
        _remove(part, "", *SQLITE_SIDE_FILES)
        raise


def _half_made(db: Path) -> bool:
    """Whether the store (an empty file too) is not at this MLflow's schema revision and
    holds no data (the default workspace and experiment are MLflow's own)."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
        tables = {t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        revision = None
        if "alembic_version" in tables:
            revision = con.execute("SELECT max(version_num) FROM alembic_version").fetchone()[0]
        if revision == _schema_head():
            return False
        for table in tables - {"alembic_version", "workspaces"}:
            own = " WHERE experiment_id != 0" if table == "experiments" else ""
            if con.execute(f'SELECT 1 FROM "{table}"{own} LIMIT 1').fetchone():
                return False
    return True


@functools.cache
def _schema_head() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def _migrate(db: Path) -> None:
    from mlflow.store.db.utils import _initialize_tables, create_sqlalchemy_engine

    engine = create_sqlalchemy_engine(f"sqlite:///{db}")
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()


def _remove(db: Path, *suffixes: str) -> None:
    for suffix in suffixes:
        db.with_name(db.name + suffix).unlink(missing_ok=True)


class Store:
    """One MLflow tracking store; a store that cannot be opened is a UserError.

    `artifact_root`, for the default store inside an output folder, re-roots artifacts there
    whatever absolute location the runs recorded, so that a moved or copied output folder
    keeps (and gets) its own artifacts."""

    def __init__(self, uri: str, artifact_root: Path | None = None):
        check_tracking_uri(uri)
        from mlflow.tracking import MlflowClient

        for name in ("alembic", "mlflow"):  # MLflow logs at INFO on import
            logging.getLogger(name).setLevel(logging.WARNING)
        self.artifact_root = artifact_root
        db = sqlite_file(uri)
        try:
            lock = contextlib.nullcontext()
            if db is not None:
                db.parent.mkdir(parents=True, exist_ok=True)
                # Two processes creating the same SQLite store at once race on its schema.
                lock_file = db.with_name(db.name + ".init.lock")
                lock_file.touch()  # FileLock waits forever for one it cannot create
                lock = FileLock(str(lock_file))
            with lock:
                if db is not None:
                    prepare_sqlite_store(db)
                self.client = MlflowClient(tracking_uri=uri)
                self.client.search_experiments(max_results=1)
        except Exception as e:
            msg = f"cannot open MLflow tracking URI {uri!r}: {first_line(e) or type(e).__name__}"
            raise UserError(msg) from None
        self.uri = uri

    # -- suites ------------------------------------------------------------------------

    def experiment(self, suite: str, artifact_root: Path | None = None) -> str:
        exp = self.client.get_experiment_by_name(suite)
        if exp is not None:
            return exp.experiment_id
        location = artifact_root.resolve().as_uri() if artifact_root else None
        try:
            return self.client.create_experiment(suite, artifact_location=location)
        except Exception:  # another process created it first
            return self.client.get_experiment_by_name(suite).experiment_id

    def set_rank_by(self, exp_id: str, rank_by: list[str]) -> None:
        """The suite's ranking lives on its experiment: the latest `genbench run` sets it,
        and the report reads it back (runs reused from older invocations follow it too)."""
        self.client.set_experiment_tag(exp_id, RANK_BY_TAG, ",".join(rank_by))

    def start_suite_run(
        self, exp_id: str, suite: str, version: str, machine: dict, config_json: str, owner: str
    ) -> str:
        tags = {
            "genbench.kind": SUITE_KIND,
            "genbench.owner": owner,  # the invocation's lock: see close_stale_suite_runs
            "genbench.suite": suite,
            "genbench.suite_version": version,
            **machine,
        }
        run_id = self.client.create_run(exp_id, run_name=f"{suite} v{version}", tags=tags)
        run_id = run_id.info.run_id
        self._log_params(run_id, {"suite": config_json})
        return run_id

    def end_run(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)

    def close_stale_suite_runs(self, exp_id: str, alive: Callable[[str], bool]) -> int:
        """Suite runs left RUNNING by an invocation that was killed become KILLED; `alive`
        tells from a run's owner tag whether its invocation still runs."""
        closed = 0
        for r in self._search(exp_id, f"tags.`genbench.kind` = '{SUITE_KIND}'"):
            owner = r.data.tags.get("genbench.owner", "")
            if r.info.status == "RUNNING" and not (owner and alive(owner)):
                self.client.set_terminated(r.info.run_id, "KILLED")
                closed += 1
        return closed

    # -- jobs --------------------------------------------------------------------------

    def finished_jobs(self, exp_id: str) -> dict[str, str]:
        """job key -> run id of every FINISHED job run in the experiment."""
        runs = self._search(exp_id, f"tags.`genbench.kind` = '{JOB_KIND}'")
        return {
            r.data.tags["genbench.job_key"]: r.info.run_id
            for r in runs
            if r.info.status == "FINISHED" and "genbench.job_key" in r.data.tags
        }

    def close_stale_runs(self, exp_id: str, job_key: str) -> None:
        """Runs of this job left RUNNING by a killed process become KILLED (the caller holds
        the job's lock, so no live process owns them)."""
        for r in self._search(exp_id, f"tags.`genbench.job_key` = '{job_key}'"):
            if r.info.status == "RUNNING":
                self.client.set_terminated(r.info.run_id, "KILLED")

    def start_job(self, exp_id: str, record: JobRecord, parent_id: str | None) -> str:
        tags = {**({"mlflow.parentRunId": parent_id} if parent_id else {}), **record.tags()}
        record.run_id = self.client.create_run(exp_id, run_name=_label(record), tags=tags)
        record.run_id = record.run_id.info.run_id
        self._log_params(record.run_id, record.params)
        return record.run_id

    def finish_job(self, record: JobRecord) -> None:
        """Write a computed record's results to its run and mark it FINISHED."""
        from mlflow.entities import Metric

        run_id = record.run_id
        if record.loss_history:
            items = [Metric(LOSS_KEY, float(v), 0, step) for step, v in record.loss_history]
            for i in range(0, len(items), 1000):
                self.client.log_batch(run_id, metrics=items[i : i + 1000])
        evals = [
            Metric(EVAL_PREFIX + k, float(v), 0, step)
            for step, values in record.eval_history
            for k, v in values.items()
        ]
        for i in range(0, len(evals), 1000):
            self.client.log_batch(run_id, metrics=evals[i : i + 1000])
        self._log_metrics(run_id, record.metrics)
        self._set_tags(run_id, record.result_tags())
        folder = self._artifact_folder(run_id)
        with tempfile.TemporaryDirectory() as tmp:
            for name, content in sorted(record.artifacts.items()):
                if folder is not None:
                    atomic_write_bytes(folder / name, content)
                else:
                    (Path(tmp) / name).write_bytes(content)
                    self.client.log_artifact(run_id, str(Path(tmp) / name))
        self.client.set_terminated(run_id, "FINISHED")
        record.status = "FINISHED"

    def add_metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        """Metrics measured after the job (a human study's scores) join its run."""
        self._log_metrics(run_id, metrics)

    def fail_job(self, run_id: str, error: str, status: str = "FAILED") -> None:
        if error:
            self._set_tags(run_id, {"genbench.error": error})
        self.client.set_terminated(run_id, status)

    def fail_lost_job(self, exp_id: str, job_key: str, parent_id: str, error: str) -> str | None:
        """A job whose worker process died: its run, left RUNNING, becomes FAILED."""
        run_id = None
        for r in self._search(exp_id, f"tags.`genbench.job_key` = '{job_key}'"):
            if r.info.status == "RUNNING" and r.data.tags.get("mlflow.parentRunId") == parent_id:
                self.fail_job(r.info.run_id, error)
                run_id = r.info.run_id
        return run_id

    # -- reading -----------------------------------------------------------------------

    def records(self, suite: str | None = None) -> list[JobRecord]:
        """Every FINISHED or FAILED job run, as records (artifacts are read on demand)."""
        exps = self.client.search_experiments()
        if suite is not None:
            exps = [e for e in exps if e.name == suite]
            if not exps:
                names = ", ".join(e.name for e in self.client.search_experiments()) or "none"
                raise UserError(f"no suite {suite!r} in this MLflow store; it has: {names}")
        out = []
        for exp in exps:
            rank_by = [m for m in exp.tags.get(RANK_BY_TAG, "").split(",") if m]
            for r in self._search(exp.experiment_id, f"tags.`genbench.kind` = '{JOB_KIND}'"):
                if r.info.status in ("FINISHED", "FAILED"):
                    out.append(_from_run(r, exp.name, rank_by))
        return out

    def artifact(self, run_id: str, name: str) -> bytes | None:
        folder = self._artifact_folder(run_id)
        if folder is not None:
            path = folder / name
            return path.read_bytes() if path.is_file() else None
        with tempfile.TemporaryDirectory() as tmp:
            try:
                return Path(self.client.download_artifacts(run_id, name, tmp)).read_bytes()
            except Exception:  # not logged for this run (e.g. no memorization metric)
                return None

    def loss_history(self, run_id: str) -> list[tuple[int, float]]:
        return sorted((m.step, m.value) for m in self.client.get_metric_history(run_id, LOSS_KEY))

    def eval_history(self, run_id: str) -> dict[str, list[tuple[int, float]]]:
        """A job's metrics during training: column -> [(step, value)], by step."""
        keys = [k for k in self.client.get_run(run_id).data.metrics if k.startswith(EVAL_PREFIX)]
        return {
            k.removeprefix(EVAL_PREFIX): sorted(
                (m.step, m.value) for m in self.client.get_metric_history(run_id, k)
            )
            for k in sorted(keys)
        }

    # -- MLflow calls ------------------------------------------------------------------

    def _artifact_folder(self, run_id: str) -> Path | None:
        """MLflow's own layout for an experiment created with this artifact location
        (ROOT/RUN/artifacts), under this store's folder."""
        return None if self.artifact_root is None else self.artifact_root / run_id / "artifacts"

    def _search(self, exp_id: str, filter_string: str) -> list:
        runs, token = [], None
        while True:
            page = self.client.search_runs(
                [exp_id], filter_string=filter_string, max_results=1000, page_token=token
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def _log_metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        items = [Metric(k, float(v), ts, 0) for k, v in metrics.items()]
        for i in range(0, len(items), 500):
            self.client.log_batch(run_id, metrics=items[i : i + 500])

    def _log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i : i + 100])

    def _set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])


def _label(record: JobRecord) -> str:
    return f"{record.dataset}/{record.model}/seed{record.seed}"


def _from_run(run, suite: str, rank_by: list[str]) -> JobRecord:
    tags, info = run.data.tags, run.info
    ident = {f: tags.get(tag, "") for f, tag in IDENTITY_TAGS.items()}
    ident["seed"] = int(ident["seed"] or 0)
    ident["suite"] = ident["suite"] or suite
    ident["source"] = ident["source"] or _old_source(tags)
    features = {
        k.removeprefix(FEATURE_PREFIX): v for k, v in tags.items() if k.startswith(FEATURE_PREFIX)
    }
    return JobRecord(
        **ident,
        reference=tags.get("genbench.reference") == "true",
        params=dict(run.data.params),
        machine={k: v for k, v in tags.items() if k.startswith(MACHINE_PREFIXES)},
        metrics={
            k: v
            for k, v in run.data.metrics.items()
            if k != LOSS_KEY and not k.startswith(EVAL_PREFIX)
        },
        features=features,
        budget_spent_steps=_number(tags.get("budget_spent_steps")),
        budget_spent_seconds=_number(tags.get("budget_spent_seconds")),
        steps_from=tags.get("steps_from"),
        fit_cached=tags["fit_cached"] == "true" if "fit_cached" in tags else None,
        nfe=tags.get("nfe"),
        sample_options=tags.get("sample_options"),
        sweep_options=tags.get("sweep_options"),
        kept_step=int(tags["kept_step"]) if tags.get("kept_step", "").isdigit() else None,
        timings={
            k.removeprefix("time."): float(v) for k, v in tags.items() if k.startswith("time.")
        },
        status=info.status,
        error=tags.get("genbench.error"),
        run_id=info.run_id,
        start_time=info.start_time,
        rank_by=rank_by,
    )


def _old_source(tags: dict) -> str:
    """Runs written before the source tag: samples files had no fit."""
    return "samples-file" if tags.get("genbench.model_ref") == "samples-file" else "trained"


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
