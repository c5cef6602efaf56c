"""Ray and SLURM (submitit) executors: the same jobs, the same leaderboard, each job once.

Ray runs on a local instance with 2 CPUs; submitit runs its local executor (real
subprocesses, the path a SLURM job array takes, without SLURM).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter

import pytest
from conftest import TESTS, job_runs, run_cli, write_suite

from bench.errors import UserError
from bench.executors import executor_options, make_executor, parse_executor_options
from bench.job import RunOptions
from bench.record import Store, default_tracking_uri
from bench.report.leaderboard import build_leaderboards
from bench.runner import Runner
from bench.suite import load_suite

pytest.importorskip("ray")
pytest.importorskip("submitit")

MODELS = """\
- name: copier
- name: pixel-gaussian
- name: mean
  model: plugin_models:MeanModel
"""


def scale_suite(tmp_path, models=MODELS, seeds="[0]", name="scale"):
    return write_suite(tmp_path, models, name=name, seeds=seeds, n_samples=100, steps=2)


@pytest.fixture(autouse=True)
def workers_import_test_models(monkeypatch):
    """Ray workers and submitit jobs are fresh processes: they find plugin_models (and
    the session's GENBENCH_CACHE) through the environment they inherit."""
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")


def run_suite(suite_path, out, executor=None, tracking_uri=None):
    runner = Runner(load_suite(suite_path), RunOptions(out, tracking_uri, device="cpu"))
    results = runner.run(executor)
    return runner, results


def board_values(store, suite="scale"):
    """metric means per (dataset, model): what the leaderboard shows, nothing else."""
    boards = build_leaderboards(store.records(suite))
    out = {}
    for b in boards:
        for model in b.table.index:
            for metric in b.metrics:
                out[b.dataset, model, metric] = float(b.table.loc[model, (metric, "mean")])
    return out


def job_statuses(store, suite="scale") -> Counter:
    """(job key, status) -> number of runs."""
    runs = job_runs(store, suite)
    return Counter((r.data.tags["genbench.job_key"], r.info.status) for r in runs)


def assert_each_job_finished_once(store, n_jobs, suite="scale"):
    counts = job_statuses(store, suite)
    assert sorted(counts.values()) == [1] * n_jobs, counts
    assert {status for _, status in counts} == {"FINISHED"}, counts


@pytest.fixture(scope="module")
def local_board(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    runner, results = run_suite(scale_suite(tmp), tmp / "out")
    assert [r.status for r in results] == ["FINISHED"] * 3, [r.error for r in results]
    values = board_values(runner.store)
    assert len(values) == 3 and all(v > 0 for v in values.values())  # copier is not 0 here
    return values


def test_ray_executor_gives_the_local_leaderboard(tmp_path, local_board):
    ex = make_executor("ray", cpus_per_job=1, max_retries=1, num_cpus=2)
    runner, results = run_suite(scale_suite(tmp_path), tmp_path / "out", ex)
    assert [r.status for r in results] == ["FINISHED"] * 3, [r.error for r in results]
    assert board_values(runner.store) == pytest.approx(local_board, rel=1e-9)
    assert_each_job_finished_once(runner.store, 3)
    # a rerun on Ray reuses every finished job
    runner, results = run_suite(scale_suite(tmp_path), tmp_path / "out", ex)
    assert [r.status for r in results] == ["REUSED"] * 3
    assert_each_job_finished_once(runner.store, 3)


def test_slurm_executor_through_the_cli_gives_the_local_leaderboard(tmp_path, local_board):
    """`genbench run --executor slurm` with submitit's local cluster: a job array of real
    subprocesses, logs under OUT/submitit."""
    out = tmp_path / "out"
    res = run_cli(
        "run",
        str(scale_suite(tmp_path)),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--executor",
        "slurm",
        "--slurm-time",
        "10",
        "--slurm-mem-gb",
        "2",
        "--max-retries",
        "0",
        env={"GENBENCH_SUBMITIT_CLUSTER": "local"},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "3 jobs: 3 run (" in res.stdout and "0 reused (finished before), 0 failed" in res.stdout
    assert list((out / "submitit").glob("*/*_log.out")), "submitit logs under OUT/submitit"
    store = Store(default_tracking_uri(out))
    assert board_values(store) == pytest.approx(local_board, rel=1e-9)
    assert_each_job_finished_once(store, 3)


@pytest.mark.parametrize("name", ["ray", "slurm"])
def test_a_dead_worker_is_retried_else_reported_and_other_jobs_survive(tmp_path, monkeypatch, name):
    """The job's process is SIGKILLed once: with no retries the job is FAILED (its run
    too, with the error) and the others finish; with a retry the rerun finishes it."""
    models = "- name: copier\n- name: killed\n  model: plugin_models:KillOnceModel\n"
    suite = scale_suite(tmp_path, models)
    options = {"num_cpus": 2} if name == "ray" else {"cluster": "local"}

    monkeypatch.setenv("GENBENCH_KILL_FLAG", str(tmp_path / "flag1"))
    ex = make_executor(name, max_retries=0, **options)
    runner, results = run_suite(suite, tmp_path / "out", ex)
    assert [r.status for r in results] == ["FINISHED", "FAILED"], [r.error for r in results]
    assert results[1].error and results[1].run_id, results[1]
    failed = runner.store.client.get_run(results[1].run_id)
    assert failed.info.status == "FAILED" and failed.data.tags["genbench.error"]

    monkeypatch.setenv("GENBENCH_KILL_FLAG", str(tmp_path / "flag2"))
    ex = make_executor(name, max_retries=1, **options)
    runner, results = run_suite(suite, tmp_path / "out", ex)
    assert [r.status for r in results] == ["REUSED", "FINISHED"], [r.error for r in results]
    assert (tmp_path / "flag2").exists(), "the second run was killed once, then retried"
    # the killed attempt's run was closed as KILLED by the retry, which then finished
    counts = job_statuses(runner.store)
    assert sorted(s for _, s in counts) == ["FAILED", "FINISHED", "FINISHED", "KILLED"], counts
    assert set(counts.values()) == {1}, counts


# -- many Ray workers, one MLflow server ------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on 127.0.0.1 (SQLite backend, one worker); stopped with its
    whole process group, whatever the test does."""
    port = free_port()
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"mlflow server did not start:\n{(tmp_path / 'server.log').read_text()}"
                )
            time.sleep(0.5)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_ray_workers_log_to_one_mlflow_server_and_lose_no_run(tmp_path, mlflow_server):
    suite = scale_suite(tmp_path, seeds="[0, 1]")  # 6 jobs on 2 workers at once
    ex = make_executor("ray", cpus_per_job=1, num_cpus=2)
    runner, results = run_suite(suite, tmp_path / "out", ex, tracking_uri=mlflow_server)
    assert [r.status for r in results] == ["FINISHED"] * 6, [r.error for r in results]
    store = Store(mlflow_server)
    assert_each_job_finished_once(store, 6)
    runs = job_runs(store, "scale")
    assert all(r.info.artifact_uri.startswith("mlflow-artifacts:") for r in runs)
    assert all(store.client.list_artifacts(r.info.run_id) for r in runs), "artifacts reached it"
    spans = sorted((r.info.start_time, r.info.end_time) for r in runs)
    overlaps = sum(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))
    assert overlaps >= 1, f"no two jobs logged at the same time: {spans}"
    values = board_values(store)
    assert len(values) == 3
    parent = store.client.get_run(results[0].run_id).data.tags["mlflow.parentRunId"]
    assert store.client.get_run(parent).info.status == "FINISHED"


# -- bad input ---------------------------------------------------------------------------


def test_bad_executor_options_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="unknown executor 'dask'; choose one of: local, ray"):
        make_executor("dask")
    with pytest.raises(UserError, match="--cpus-per-job must be positive"):
        make_executor("ray", cpus_per_job=0)
    with pytest.raises(UserError, match="--max-retries"):
        make_executor("slurm", max_retries=-1)
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    with pytest.raises(UserError, match="sbatch not found"):
        make_executor("slurm")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(UserError, match=r"pip install ray"):
        make_executor("ray")
    res = run_cli("run", str(scale_suite(tmp_path)), "--executor", "dask")
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2 and len(lines) == 1 and "unknown executor" in lines[0], res.stderr


def test_executor_options_are_declared_typed_and_the_old_flags_map_onto_them():
    flags = {"address": None, "cpus_per_job": 1, "partition": "gpu", "time": 60}
    options = executor_options("ray", flags, ["cpus_per_job=2.5", "num_cpus=3"])
    assert options == {"cpus_per_job": 2.5, "num_cpus": 3}  # no partition; None: not given
    assert executor_options("slurm", flags, None)["partition"] == "gpu"
    assert executor_options("local", flags, []) == {}
    with pytest.raises(UserError, match="KEY of executor 'local' \\(jobs\\)"):
        executor_options("local", flags, ["cpus_per_job=2"])
    with pytest.raises(UserError, match="num_cpus takes int values"):
        parse_executor_options("ray", ["num_cpus=2.5"])
    with pytest.raises(UserError, match="executor 'ray' takes no option 'partition'"):
        make_executor("ray", partition="gpu")
    listed = run_cli("list", "executors")
    assert "ray: Each job a Ray task" in listed.stdout
    assert "    cpus_per_job=FLOAT  CPUs per job [default: 1]" in listed.stdout


def test_the_suite_file_names_the_executor_and_the_command_line_wins(tmp_path):
    """#27: an executor and its options could be chosen on the command line only."""
    block = "executor: {name: slurm, options: {time: 5, partition: gpu}}\n"
    suite = write_suite(tmp_path, "- name: copier\n", name="ex", n_samples=100, extra=block)
    assert load_suite(suite).executor.options == {"time": 5, "partition": "gpu"}
    # the suite's options, then the flags given (None: not given), then --executor-option
    from_suite = {"time": 5, "partition": "gpu", "mem_gb": 1.0}
    options = executor_options("slurm", {"time": 9, "partition": None}, ["mem_gb=2"], from_suite)
    assert options == {"time": 9, "partition": "gpu", "mem_gb": 2.0}
    out = ["--out", str(tmp_path / "out")]
    res = run_cli("run", str(suite), *out, env={"PATH": str(tmp_path)})  # no sbatch here
    assert res.returncode == 2 and "sbatch not found" in res.stderr, res.stderr  # the suite's
    res = run_cli("run", str(suite), *out, "--executor", "local", "--jobs", "1")
    assert res.returncode == 0, res.stderr  # --executor wins over the suite's
