"""Crash safety, parallel runs and determinism."""

import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch
from conftest import ROOT, TESTS, job_runs, run_cli, write_suite

from bench.cache import Cache
from bench.job import RunOptions
from bench.record import Store, default_tracking_uri
from bench.report.render import write_report
from bench.runner import Runner
from bench.suite import load_suite


def suite_file(tmp_path, models: str, name="rel", metrics="[fd_pixels]"):
    return write_suite(tmp_path, models, name=name, metrics=metrics, n_samples=150)


def out_job_runs(out, name):
    return job_runs(Store(default_tracking_uri(out)), name)


def finished_models(out, name):
    return sorted(
        r.data.tags["genbench.model"]
        for r in out_job_runs(out, name)
        if r.info.status == "FINISHED"
    )


def test_corrupt_or_half_written_cache_entries_are_recomputed(tmp_path):
    cache = Cache(tmp_path)
    cache.save("samples", "k", {"x": torch.arange(10)})
    path = tmp_path / "samples" / "k.pt"
    path.write_bytes(path.read_bytes()[:-3] + b"xyz")  # bit rot
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.load("samples", "k") is None
    assert "corrupt" in str(caught[0].message) and not path.exists()
    cache.save("samples", "k", {"x": torch.arange(10)})
    (tmp_path / "samples" / "k.pt.sha256").unlink()  # crash between data and checksum
    with pytest.warns(UserWarning, match="corrupt"):
        assert cache.load("samples", "k") is None
    value = cache.get_or_compute("samples", "k", lambda: {"x": torch.ones(2)})
    assert torch.equal(cache.load("samples", "k")["x"], value["x"])


@pytest.mark.parametrize("killer", ["KillOnceModel", "KillInSamplingModel"])
def test_sigkill_during_fit_or_sampling_then_rerun_gives_each_job_once(tmp_path, killer):
    suite = suite_file(
        tmp_path,
        f"""\
        - name: a
          model: plugin_models:MeanModel
        - name: k
          model: plugin_models:{killer}
        - name: b
          model: plugin_models:MeanModel
          options: {{noise: 2.0}}
    """,
    )
    out = tmp_path / "out"
    env = {"GENBENCH_KILL_FLAG": str(tmp_path / "flag")}
    # one job at a time: the job's SIGKILL kills genbench itself
    assert run_cli("run", str(suite), "--out", str(out), "--jobs", "1", env=env).returncode == -9
    res = run_cli("run", str(suite), "--out", str(out), env=env)
    assert res.returncode == 0, res.stderr
    assert finished_models(out, "rel") == ["a", "b", "k"]
    # the same leaderboard as an uninterrupted run
    clean = tmp_path / "clean"
    suite.write_text(suite.read_text().replace(killer, "MeanModel"))
    assert run_cli("run", str(suite), "--out", str(clean)).returncode == 0
    assert (out / "leaderboard.csv").read_text() == (clean / "leaderboard.csv").read_text()


def test_sigkill_from_outside_between_jobs(tmp_path):
    suite = suite_file(
        tmp_path,
        """\
        - name: slow1
          model: plugin_models:MeanModel
          options: {fit_seconds: 3.0}
        - name: slow2
          model: plugin_models:MeanModel
          options: {fit_seconds: 3.0, noise: 2.0}
    """,
    )
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "run", str(suite), "--out", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not list((out / "cache" / "checkpoints").glob("*.pt.sha256")):
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    res = run_cli("run", str(suite), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert finished_models(out, "rel") == ["slow1", "slow2"]


def test_two_processes_on_one_output_folder_run_each_job_once(tmp_path):
    models = "".join(
        f"- name: m{i}\n  model: plugin_models:MeanModel\n"
        f"  options: {{fit_seconds: 1.5, noise: {i + 1}.0}}\n"
        for i in range(4)
    )
    suite = suite_file(tmp_path, models, name="par", metrics="[fd_pixels]")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.cli", "run", str(suite), "--out", str(out)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    runs = out_job_runs(out, "par")
    assert sorted(r.data.tags["genbench.model"] for r in runs) == ["m0", "m1", "m2", "m3"]
    assert all(r.info.status == "FINISHED" for r in runs)
    reused = sum(
        o[0].count("reused") and int(o[0].split(" reused")[0].split()[-1]) for o in outputs
    )
    assert reused == 4  # every job ran in one process and was reused by the other


def test_same_suite_and_seeds_give_bitwise_identical_metrics(tmp_path):
    suite = suite_file(
        tmp_path,
        """\
        - name: vae
          options: {width: 8, hidden: 16}
        - name: pixel-gaussian
        - name: dcgan
          options: {width: 8}
    """,
        metrics="[fd_classifier, fd_pixels, prdc, memorization]",
    )
    results = []
    for out in ("one", "two"):
        runner = Runner(load_suite(suite), RunOptions(tmp_path / out))
        assert all(r.status == "FINISHED" for r in runner.run())
        runs = job_runs(runner.store, runner.suite.name)
        results.append(
            {r.data.tags["genbench.model"]: (r.data.metrics, r.data.params) for r in runs}
        )
        write_report(runner.store, tmp_path / out, "rel")
    assert results[0].keys() == {"vae", "pixel-gaussian", "dcgan"}
    for model, (metrics, params) in results[0].items():
        assert metrics == results[1][model][0], model  # exact equality, not approx
        assert params["seed"] == "0" and "sample_seed" in params


def start_run(suite, out) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    return subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "run", str(suite), "--out", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_a_running_job(proc, out, name):
    deadline = time.time() + 300
    while not any(r.info.status == "RUNNING" for r in safe_runs(out, name)):
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.3)


def safe_runs(out, name):
    try:
        return out_job_runs(out, name)
    except Exception:  # the store or experiment is not there yet
        return []


def suite_runs(out, name):
    store = Store(default_tracking_uri(out))
    exp = store.client.get_experiment_by_name(name).experiment_id
    return store.client.search_runs([exp], "tags.`genbench.kind` = 'suite'")


SLOW = """\
- name: slow
  model: plugin_models:MeanModel
  options: {fit_seconds: 20.0}
"""


@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
)
def test_sigterm_and_ctrl_c_mark_runs_killed_and_say_so(tmp_path, sig, code, word):
    suite, out = suite_file(tmp_path, SLOW), tmp_path / "out"
    proc = start_run(suite, out)
    wait_for_a_running_job(proc, out, "rel")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code
    assert err.strip().splitlines()[-1] == f"genbench: {word}; run the same command again to resume"
    assert [r.info.status for r in out_job_runs(out, "rel")] == ["KILLED"]
    assert [r.info.status for r in suite_runs(out, "rel")] == ["KILLED"]


def test_the_next_invocation_closes_a_killed_invocations_parent_run(tmp_path):
    suite, out = suite_file(tmp_path, SLOW.replace("20.0", "1.0")), tmp_path / "out"
    proc = start_run(suite, out)
    wait_for_a_running_job(proc, out, "rel")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [r.info.status for r in suite_runs(out, "rel")] == ["RUNNING"]
    res = run_cli("run", str(suite), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert sorted(r.info.status for r in suite_runs(out, "rel")) == ["FINISHED", "KILLED"]


# (signal, seconds after the store's first file appears): creating it takes about a second
STORE_KILL_POINTS = [
    *((signal.SIGKILL, t) for t in (0.0, 0.05, 0.15, 0.3, 0.5, 0.8)),
    *((signal.SIGTERM, t) for t in (0.02, 0.1, 0.25, 0.4, 0.65)),
]


def wait_for_the_store_file(proc, out):
    """Until the first file of the MLflow store (not its lock) appears, or the run ends."""
    folder = out / "mlruns"
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if folder.is_dir() and any(
            f.name.startswith("mlflow.db") and not f.name.endswith(".lock")
            for f in folder.iterdir()
        ):
            return
        time.sleep(0.002)


def test_a_run_interrupted_while_it_creates_its_store_leaves_a_folder_the_next_run_completes(
    tmp_path,
):
    """#34 item 3: a store half-migrated by an interrupted first run failed every later run."""
    suite = suite_file(tmp_path, "- name: copier\n- name: pixel-gaussian\n")
    for i, (sig, delay) in enumerate(STORE_KILL_POINTS):
        out = tmp_path / f"out{i}"
        proc = start_run(suite, out)
        wait_for_the_store_file(proc, out)
        time.sleep(delay)
        proc.send_signal(sig)
        proc.communicate(timeout=120)
        results = Runner(load_suite(suite), RunOptions(out)).run()
        assert {r.status for r in results} <= {"FINISHED", "REUSED"}, (sig, delay)
        assert finished_models(out, "rel") == ["copier", "pixel-gaussian"], (sig, delay)


def test_a_moved_output_folder_keeps_its_report_and_artifacts(tmp_path):
    suite = suite_file(tmp_path, "- name: copier\n- name: pixel-gaussian\n")
    first = tmp_path / "first"
    assert run_cli("run", str(suite), "--out", str(first)).returncode == 0
    html = (first / "leaderboard.html").read_text()
    assert html.count("data:image/png") >= 2
    moved = tmp_path / "moved"
    first.rename(moved)
    res = run_cli("report", "--out", str(moved))
    assert res.returncode == 0, res.stderr
    assert (moved / "leaderboard.html").read_text() == html  # same images, from the new place
    suite.write_text(
        suite.read_text().replace("  - name: copier\n", "  - name: copier\n  - name: mixture\n")
    )
    assert run_cli("run", str(suite), "--out", str(moved)).returncode == 0
    assert not first.exists()  # nothing written to where the folder was
    assert (moved / "leaderboard.html").read_text().count("data:image/png") >= 3


def test_a_symlink_planted_at_the_leaderboard_is_replaced_not_followed(tmp_path):
    suite = suite_file(tmp_path, "- name: copier\n")
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    victim.write_text("keep me")
    out.mkdir()
    (out / "leaderboard.md").symlink_to(victim)
    assert run_cli("run", str(suite), "--out", str(out)).returncode == 0
    assert victim.read_text() == "keep me"
    assert (
        not (out / "leaderboard.md").is_symlink()
        and "copier" in (out / "leaderboard.md").read_text()
    )
