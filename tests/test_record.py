"""The job record owns the MLflow schema: what it writes, it reads back unchanged."""

import contextlib
import itertools
import os
import sqlite3

import pytest
from conftest import run_cli, write_suite

from bench.errors import UserError
from bench.job import RunOptions
from bench.record import JobRecord, Store, default_tracking_uri
from bench.runner import Runner
from bench.suite import load_suite


def full_record() -> JobRecord:
    return JobRecord(
        job_key="j1", fit_key="f1", samples_key="s1", suite="rec", suite_version="3",
        dataset="digits", dataset_hash="abc", model="vae-small", model_ref="vae",
        source="trained", seed=2, reference=True, model_version="vae-pkg==1.2",
        model_source_sha256="0123abcd", checkpoint_sha256="c0ffee", samples_sha256="",
        params={"n_samples": 100, "option.z_dim": 4},
        machine={"git_commit": "deadbeef", "version.torch": "2.14.1", "device": "cpu"},
        metrics={"fd_pixels_n100_train": 1.25, "kid_pixels_n100": -0.5},
        features={"classifier_weights_sha256": "ff00", "classifier_test_accuracy": 0.99},
        budget_spent_steps=30, budget_spent_seconds=4.25, steps_from="progress", fit_cached=False,
        nfe="1",
        sample_options="{}", timings={"fit_or_load_s": 1.5},
        loss_history=[(1, 3.0), (2, 2.5)], artifacts={"metrics.json": b'{"a": 1}'},
    )  # fmt: skip


def test_a_record_round_trips_through_mlflow(tmp_path):
    store = Store(default_tracking_uri(tmp_path))
    exp = store.experiment("rec", tmp_path / "artifacts")
    store.set_rank_by(exp, ["fd_pixels_n100_train"])
    record = full_record()
    parent = store.start_suite_run(exp, "rec", "3", record.machine, "{}", "owner-1")
    store.start_job(exp, record, parent)
    assert store.finished_jobs(exp) == {}
    store.finish_job(record)
    assert store.finished_jobs(exp) == {"j1": record.run_id}
    [back] = store.records("rec")
    for field in (
        "job_key", "fit_key", "samples_key", "suite", "suite_version", "dataset",
        "dataset_hash", "model", "model_ref", "source", "seed", "reference", "machine",
        "metrics", "budget_spent_steps", "fit_cached", "nfe", "sample_options", "timings",
        "model_version", "model_source_sha256", "checkpoint_sha256", "samples_sha256",
        "steps_from",
    ):  # fmt: skip
        assert getattr(back, field) == getattr(record, field), field
    assert back.budget_spent_seconds == pytest.approx(4.2, abs=0.06)  # recorded to 0.1 s
    assert back.features == {
        "classifier_weights_sha256": "ff00",
        "classifier_test_accuracy": "0.99",
    }
    assert back.params == {"n_samples": "100", "option.z_dim": "4"}
    assert back.status == "FINISHED" and back.rank_by == ["fd_pixels_n100_train"]
    assert store.loss_history(back.run_id) == [(1, 3.0), (2, 2.5)]
    assert store.artifact(back.run_id, "metrics.json") == b'{"a": 1}'
    assert store.artifact(back.run_id, "absent.png") is None
    run = store.client.get_run(back.run_id)
    assert run.data.tags["mlflow.parentRunId"] == parent


def test_failed_stale_and_lost_jobs(tmp_path):
    store = Store(default_tracking_uri(tmp_path))
    exp = store.experiment("rec")
    failed, stale, lost = full_record(), full_record(), full_record()
    failed.job_key, stale.job_key, lost.job_key = "failed", "stale", "lost"
    store.fail_job(store.start_job(exp, failed, None), "samples contain NaN")
    store.start_job(exp, stale, None)
    store.close_stale_runs(exp, "stale")
    store.start_job(exp, lost, "parent-1")
    assert store.fail_lost_job(exp, "lost", "other-parent", "gone") is None
    assert store.fail_lost_job(exp, "lost", "parent-1", "worker lost") == lost.run_id
    by_key = {r.job_key: r for r in store.records("rec")}
    assert by_key["failed"].status == "FAILED" and by_key["failed"].error == "samples contain NaN"
    assert by_key["lost"].error == "worker lost"
    assert "stale" not in by_key  # KILLED runs are not results
    assert store.client.get_run(stale.run_id).info.status == "KILLED"


def test_unknown_suite_and_bad_uri_are_one_line(tmp_path):
    store = Store(default_tracking_uri(tmp_path))
    store.experiment("rec")
    with pytest.raises(UserError, match="no suite 'other' in this MLflow store; it has: rec"):
        store.records("other")
    with pytest.raises(UserError, match="cannot open MLflow tracking URI 'bogus://x'"):
        Store("bogus://x")


def test_only_suite_runs_of_dead_invocations_are_closed(tmp_path):
    store = Store(default_tracking_uri(tmp_path))
    exp = store.experiment("rec")
    live = store.start_suite_run(exp, "rec", "1", {}, "{}", "live")
    dead = store.start_suite_run(exp, "rec", "1", {}, "{}", "dead")
    assert store.close_stale_suite_runs(exp, lambda owner: owner == "live") == 1
    assert store.client.get_run(live).info.status == "RUNNING"
    assert store.client.get_run(dead).info.status == "KILLED"


def test_the_schemes_genbench_accepts_are_those_mlflow_handles():
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    from bench.record import MLFLOW_SCHEMES, check_scheme

    assert set(_tracking_store_registry._registry) == MLFLOW_SCHEMES
    for uri in ["sqlite:///x.db", "postgresql+psycopg2://u@h/db", "/tmp/mlruns", "C:/runs"]:
        check_scheme(uri)
    with pytest.raises(UserError, match="no MLflow store handles nosuchscheme://"):
        check_scheme("nosuchscheme://x")


# -- creating the SQLite store (#34 item 3) ----------------------------------------------------


@contextlib.contextmanager
def disk_full_at(statement: int):
    """SQLite reports a full disk at the given SQL statement (from 1) of any engine."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    count = itertools.count(1)

    def fail(*args):
        if next(count) == statement:
            raise sqlite3.OperationalError("database or disk is full")

    event.listen(Engine, "before_cursor_execute", fail)
    try:
        yield
    finally:
        event.remove(Engine, "before_cursor_execute", fail)


def migrate(db) -> None:
    """MLflow's own creation of a store's tables, as MLflow (and genbench before #34) did it
    on the store's own path."""
    from mlflow.store.db.utils import _initialize_tables
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{db}")
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def migration_statements(tmp_path_factory) -> int:
    """How many SQL statements MLflow's migrations of a new store make."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    count = itertools.count()

    def add(*args):
        next(count)

    event.listen(Engine, "before_cursor_execute", add)
    try:
        migrate(tmp_path_factory.mktemp("count") / "mlflow.db")
    finally:
        event.remove(Engine, "before_cursor_execute", add)
    return next(count)


# from the first SQL statement of MLflow's migrations to the last (with MLflow 3.17, points that
# leave, on MLflow's own creation path, stores it cannot open: "duplicate column name",
# "table ... already exists", "out-of-date database schema")
FULL_DISK_POINTS = (0.0, 0.03, 0.2, 0.6, 0.995)


def completes_every_job(tmp_path, out) -> None:
    suite = write_suite(tmp_path, "- name: copier\n- name: pixel-gaussian\n", n_samples=60)
    results = Runner(load_suite(suite), RunOptions(out)).run()
    assert sorted(r.status for r in results) == ["FINISHED", "FINISHED"]


def schema_revision(db) -> str | None:
    with contextlib.closing(sqlite3.connect(db)) as con:
        try:
            return con.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        except (sqlite3.OperationalError, TypeError):  # no table, or no row
            return None


@pytest.mark.parametrize("point", FULL_DISK_POINTS)
def test_a_full_disk_while_the_store_is_created_leaves_no_store_and_the_next_run_completes(
    tmp_path, migration_statements, point
):
    out = tmp_path / "out"
    with disk_full_at(1 + int(point * migration_statements)):
        with pytest.raises(UserError, match="database or disk is full") as refused:
            Store(default_tracking_uri(out))
    assert "\n" not in str(refused.value)
    left = {p.name for p in (out / "mlruns").iterdir()}
    assert left <= {"mlflow.db", "mlflow.db.init.lock"}  # nothing half-made beside it
    completes_every_job(tmp_path, out)


@pytest.mark.parametrize("point", FULL_DISK_POINTS)
def test_a_store_left_half_migrated_is_rebuilt_when_it_holds_nothing(
    tmp_path, migration_statements, point
):
    """As genbench before this, or MLflow itself, leaves a store whose creation stopped."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    out = tmp_path / "out"
    db = out / "mlruns" / "mlflow.db"
    db.parent.mkdir(parents=True)
    with disk_full_at(1 + int(point * migration_statements)), contextlib.suppress(Exception):
        migrate(db)
    assert schema_revision(db) != _get_latest_schema_revision()
    completes_every_job(tmp_path, out)


def test_a_half_migrated_store_that_holds_a_run_is_left_as_it_is(tmp_path, migration_statements):
    db = tmp_path / "user.db"
    with disk_full_at(int(0.6 * migration_statements)), contextlib.suppress(Exception):
        migrate(db)
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        con.execute("INSERT INTO runs (run_uuid, experiment_id) VALUES ('kept', 0)")
    with contextlib.suppress(UserError):  # MLflow may upgrade it, or say why it cannot
        Store(f"sqlite:///{db}")
    with contextlib.closing(sqlite3.connect(db)) as con:
        assert con.execute("SELECT run_uuid FROM runs").fetchall() == [("kept",)]


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_sqlite_uri_naming_a_folder_or_a_fifo_is_refused_at_once(tmp_path, kind):
    """#34 item 8: MLflow retried opening either for about 100 s before its one-line error."""
    path = tmp_path / "store"
    path.mkdir() if kind == "folder" else os.mkfifo(path)
    what = "a folder" if kind == "folder" else "not a file"
    for command in (["report", "--out", str(tmp_path)], ["run", "suites/digits.yaml"]):
        res = run_cli(*command, "--tracking-uri", f"sqlite:///{path}", timeout=30)
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert res.returncode == 2 and len(lines) == 1, res.stderr
        assert f"{path} is {what}; name a database file" in lines[0]


def test_a_sqlite_store_whose_lock_cannot_be_created_is_refused_at_once(tmp_path):
    """FileLock waited forever for a lock file that cannot be created (ENOENT under /proc)."""
    if not os.path.isdir("/proc/self"):
        pytest.skip("needs Linux's /proc")
    for command in (["report", "--out", str(tmp_path)], ["run", "suites/digits.yaml"]):
        res = run_cli(*command, "--tracking-uri", "sqlite:////proc/genbench.db", timeout=30)
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert res.returncode == 2 and len(lines) == 1, res.stderr
        assert "cannot open MLflow tracking URI 'sqlite:////proc/genbench.db'" in lines[0]


def test_an_in_memory_sqlite_store_writes_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Store("sqlite:///:memory:").experiment("rec")
    assert list(tmp_path.iterdir()) == []
