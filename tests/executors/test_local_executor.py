"""The local executor with parallel jobs (--jobs N): worker processes, the same leaderboard
as one job at a time, a sweep's model trained once, stops and deaths that lose nothing."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from conftest import ROOT, TESTS, job_runs, run_cli, write_suite

from bench.executors import make_executor
from bench.executors.local import LocalExecutor, dispatch_order
from bench.job import RunOptions
from bench.record import Store, default_tracking_uri
from bench.report.render import write_report
from bench.runner import Runner
from bench.suite import expand_jobs, load_suite
from bench.worker import JobSpec

# a reference, a plug-in family (registered by the suite's plugins: module, which every
# worker must import), two entries of one plug-in model, and a VAE sweep over one fit
MODELS = """\
- name: copier
- name: registered
  model: test-mean
- name: mean
  model: plugin_models:MeanModel
- name: mean-noisier
  model: plugin_models:MeanModel
  options: {noise: 12.0}
- name: vae-mean
  model: vae
  options: {width: 8}
- name: vae-sample
  model: vae
  options: {width: 8, sample_mode: sample}
"""


def tiny_suite(tmp_path, models=MODELS, name="par"):
    return write_suite(
        tmp_path,
        models,
        name=name,
        n_samples=100,
        steps=2,
        metrics="[fd_pixels, kid_pixels]",
        extra="plugins: [plugin_models]\n",
    )


def run_suite(suite, out, jobs):
    runner = Runner(load_suite(suite), RunOptions(out, device="cpu"))
    results = runner.run(LocalExecutor(jobs))
    write_report(runner.store, out, runner.suite.name)
    return runner, results


def board_rows(out) -> list[dict]:
    """The leaderboard's rows, every column but the wall time of training."""
    with open(out / "leaderboard.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and "train_seconds" in rows[0]
    return [{k: v for k, v in row.items() if k != "train_seconds"} for row in rows]


def by_model(store, suite="par"):
    return {r.data.tags["genbench.model"]: r for r in job_runs(store, suite)}


@pytest.fixture(scope="module")
def one_and_two(tmp_path_factory):
    """The tiny suite run with one job at a time, then with two at once."""
    tmp = tmp_path_factory.mktemp("jobs")
    suite = tiny_suite(tmp)
    runs = {}
    for jobs in (1, 2):
        runner, results = run_suite(suite, tmp / f"jobs{jobs}", jobs)
        assert [r.status for r in results] == ["FINISHED"] * 6, [r.error for r in results]
        runs[jobs] = (tmp / f"jobs{jobs}", results, by_model(runner.store))
    return runs


def test_two_jobs_at_once_give_the_one_at_a_time_leaderboard(one_and_two):
    (out1, results1, runs1), (out2, results2, runs2) = one_and_two[1], one_and_two[2]
    # results in suite order, whatever order the jobs ran in
    assert [r.job.entry.name for r in results2] == [r.job.entry.name for r in results1]
    assert board_rows(out2) == board_rows(out1)
    assert runs1.keys() == runs2.keys()
    for model, run in runs1.items():
        assert run.data.metrics == runs2[model].data.metrics, model  # bitwise
        assert run.data.params == runs2[model].data.params, model
    # each worker trains on one thread, as one job at a time does
    assert {r.data.tags["torch_threads"] for r in runs2.values()} == {"1"}


def test_a_sweeps_model_is_trained_once_under_two_jobs(one_and_two):
    """vae-mean and vae-sample share one fit: the dispatcher holds the second back while
    the first trains, so it loads the fit instead of training it again."""
    _, _, runs = one_and_two[2]
    fit_cached = {m: runs[m].data.tags["fit_cached"] for m in ("vae-mean", "vae-sample")}
    assert sorted(fit_cached.values()) == ["false", "true"], fit_cached


def test_the_longest_jobs_are_dispatched_first(tmp_path):
    suite = load_suite(tiny_suite(tmp_path))
    specs = [JobSpec(job, RunOptions(tmp_path), "0", "p") for job in expand_jobs(suite)]
    names = [s.job.entry.name for s in specs]
    shared = {"vae-mean": "vae", "vae-sample": "vae"}
    fit_keys = [None if n == "copier" else shared.get(n, n) for n in names]
    order = [names[i] for i in dispatch_order(specs, fit_keys, range(len(specs)))]
    # the sweep's model (it unblocks the other point), the families, then the reference
    assert order == ["vae-mean", "vae-sample", "registered", "mean", "mean-noisier", "copier"]


def test_a_dead_worker_loses_only_its_job_and_the_rerun_runs_it(tmp_path, monkeypatch):
    models = """\
    - name: copier
    - name: killed
      model: plugin_models:KillOnceModel
    - name: mean
      model: plugin_models:MeanModel
    """
    suite = write_suite(tmp_path, models, n_samples=100, steps=2)
    monkeypatch.setenv("GENBENCH_KILL_FLAG", str(tmp_path / "flag"))
    runner, results = run_suite(suite, tmp_path / "out", 2)
    status = {r.job.entry.name: r for r in results}
    assert [status[m].status for m in ("copier", "killed", "mean")] == [
        "FINISHED",
        "FAILED",
        "FINISHED",
    ]
    assert status["killed"].error == "worker process died (killed by SIGKILL)"
    failed = runner.store.client.get_run(status["killed"].run_id)
    assert failed.info.status == "FAILED" and "SIGKILL" in failed.data.tags["genbench.error"]

    runner, results = run_suite(suite, tmp_path / "out", 2)
    assert [r.status for r in results] == ["REUSED", "FINISHED", "REUSED"]


def test_jobs_default_to_the_physical_cores(monkeypatch):
    monkeypatch.setattr("bench.threads.available_cores", lambda: 3)
    assert make_executor("local").jobs == 3
    assert make_executor("local", jobs=1).jobs == 1


# -- stopping a parallel run --------------------------------------------------------------

STALLING = """\
- name: quick
  model: plugin_models:MeanModel
- name: stall3
  model: plugin_models:StallOnceModel
  options: {noise: 3.0}
- name: stall4
  model: plugin_models:StallOnceModel
  options: {noise: 4.0}
- name: copier
"""


def statuses(out, suite="stall") -> Counter:
    """(model, status) -> number of job runs."""
    runs = job_runs(Store(default_tracking_uri(out)), suite)
    return Counter((r.data.tags["genbench.model"], r.info.status) for r in runs)


def wait_until(condition, proc, what: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None or proc.returncode in (-9, 143), f"exited before {what}"
        assert time.monotonic() < deadline, f"no {what} in {seconds} s"
        time.sleep(0.3)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stopped_parallel_run_resumes_with_each_job_once_and_nothing_trained_twice(tmp_path, sig):
    """Two workers stall in their jobs' sampling (their fits cached) after a first job
    finished; the driver is stopped (SIGTERM: it stops its workers; SIGKILL: the orphaned
    workers stop themselves). The stalled runs end KILLED, and the rerun finishes every
    job exactly once, training none of the fits again."""
    suite = write_suite(tmp_path, STALLING, name="stall", n_samples=100, steps=2)
    out, stalls, fits = tmp_path / "out", tmp_path / "stalls", tmp_path / "fits.log"
    stalls.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]),
        "GENBENCH_STALL_DIR": str(stalls),
        "GENBENCH_FIT_LOG": str(fits),
    }
    command = [sys.executable, "-m", "bench.cli", "run", str(suite), "--out", str(out)]
    proc = subprocess.Popen(
        [*command, "--jobs", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: len(list(stalls.glob("*.pid"))) == 2, proc, "two stalled jobs")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
    finally:  # whatever failed, no process of this test is left behind
        if proc.poll() is None:
            proc.kill()
        for pid_file in stalls.glob("*.pid"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
    stalled = [("stall3", "KILLED"), ("stall4", "KILLED")]
    if sig == signal.SIGTERM:
        assert proc.returncode == 143, err
        assert err.strip().splitlines()[-1].startswith("genbench: terminated")
    else:  # nobody told the workers: they see their driver gone and stop their jobs
        assert proc.returncode == -9
        wait_until(lambda: all(statuses(out)[s] for s in stalled), proc, "KILLED runs", 60)
    assert statuses(out) == Counter([("quick", "FINISHED"), *stalled])

    res = run_cli("run", str(suite), "--out", str(out), "--jobs", "2", env=env)
    assert res.returncode == 0, res.stderr
    assert "4 jobs: 3 run (" in res.stdout and "1 reused (finished before), 0 failed" in res.stdout
    finished = [(m, "FINISHED") for m in ("quick", "stall3", "stall4", "copier")]
    assert statuses(out) == Counter([*finished, *stalled])
    assert sorted(fits.read_text().splitlines()) == [
        "MeanModel noise=8.0",
        "StallOnceModel noise=3.0",
        "StallOnceModel noise=4.0",
    ]
