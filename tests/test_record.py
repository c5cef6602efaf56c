"""The job record owns the MLflow schema: what it writes, it reads back unchanged."""

import pytest

from bench.errors import UserError
from bench.record import JobRecord, Store, default_tracking_uri


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
