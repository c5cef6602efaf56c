"""The runner end to end on tiny suites: plug-in paths, caching, resumption, isolation."""

import json
import os
from importlib.metadata import version

import numpy as np
import plugin_models
import pytest
import torch
from conftest import ROOT, job_runs, run_cli, write_suite

from bench import origin
from bench.job import RunOptions, sample_seed
from bench.record import Store, default_tracking_uri
from bench.report.leaderboard import by_trained_model
from bench.report.render import write_report
from bench.runner import Runner
from bench.suite import load_suite


def make_suite(tmp_path, models: str, name="tiny", metrics="[fd_pixels]", seeds="[0]"):
    return write_suite(tmp_path, models, name=name, metrics=metrics, seeds=seeds)


def run(tmp_path, suite_path):
    runner = Runner(load_suite(suite_path), RunOptions(tmp_path / "out"))
    results = runner.run()
    boards = write_report(runner.store, tmp_path / "out", runner.suite.name)
    return runner, results, boards


def runner_job_runs(runner):
    return job_runs(runner.store, runner.suite.name)


def install_test_package(tmp_path, monkeypatch, name: str, text: str) -> None:
    """A distribution `genbench-test-plugin` 0.1 on sys.path, with one more metadata file."""
    dist = tmp_path / "site" / "genbench_test_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: genbench-test-plugin\nVersion: 0.1\n"
    )
    (dist / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))


def test_every_plugin_path_and_rerun_trains_nothing(tmp_path, monkeypatch):
    # entry point: a distribution on sys.path that declares genbench.models
    install_test_package(
        tmp_path,
        monkeypatch,
        "entry_points.txt",
        "[genbench.models]\ntest-ep = plugin_models:MeanModel\n",
    )
    # checkpoint and samples files
    ckpt = tmp_path / "mean.pt"
    torch.save({"mean": torch.full((1, 8, 8), 100.0)}, ckpt)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", rng.integers(0, 256, (300, 1, 8, 8), dtype=np.uint8))
    suite = make_suite(
        tmp_path,
        """\
        - name: registered
          model: test-mean
        - name: entry-point
          model: test-ep
        - name: by-reference
          model: plugin_models:MeanModel
          options: {noise: 4.0}
        - name: from-checkpoint
          model: plugin_models:MeanModel
          checkpoint: mean.pt
        - name: from-samples
          samples: s.npz
        - name: copier
    """,
    )
    plugin_models.MeanModel.fits = 0
    runner, results, boards = run(tmp_path, suite)
    assert [r.status for r in results] == ["FINISHED"] * 6, [r.error for r in results]
    # three fits (registered, entry point, module:Class); the checkpoint job trains nothing
    assert plugin_models.MeanModel.fits == 3
    table = boards[0].table
    col = ("fd_pixels_n200_train", "mean")
    assert set(table.index) == {
        "registered",
        "entry-point",
        "by-reference",
        "from-checkpoint",
        "from-samples",
        "copier",
    }
    assert table[col].idxmin() == "copier"
    assert table.loc["from-checkpoint", col] > table.loc["registered", col]
    first = {r.info.run_id for r in runner_job_runs(runner)}

    plugin_models.MeanModel.fits = 0
    runner2, results2, boards2 = run(tmp_path, suite)
    assert [r.status for r in results2] == ["REUSED"] * 6
    assert plugin_models.MeanModel.fits == 0
    assert {r.info.run_id for r in runner_job_runs(runner2)} == first
    assert boards2[0].table.equals(boards[0].table)


def test_changed_options_retrain_only_that_model(tmp_path):
    suite = make_suite(
        tmp_path,
        """\
        - name: a
          model: plugin_models:MeanModel
        - name: b
          model: plugin_models:MeanModel
    """,
    )
    run(tmp_path, suite)
    suite.write_text(
        suite.read_text().replace(
            "- name: b\n    model: plugin_models:MeanModel",
            "- name: b\n    model: plugin_models:MeanModel\n    options: {noise: 2.0}",
        )
    )
    plugin_models.MeanModel.fits = 0
    _, results, boards = run(tmp_path, suite)
    assert [r.status for r in results] == ["REUSED", "FINISHED"]
    assert plugin_models.MeanModel.fits == 1
    assert len(boards[0].table) == 2  # the newer b replaces the older one


def test_suite_rank_by_reaches_the_report_and_follows_the_latest_run(tmp_path):
    suite = make_suite(
        tmp_path, "- name: a\n  model: plugin_models:MeanModel\n", metrics="[fd_pixels, kid_pixels]"
    )
    text = suite.read_text()
    suite.write_text(text + "rank_by: [kid_pixels_n200, fd_pixels_n200_train]\n")
    _, _, boards = run(tmp_path, suite)
    assert boards[0].rank_by == ["kid_pixels_n200", "fd_pixels_n200_train"]
    suite.write_text(text)  # ranking is not part of a job: the rerun reuses it
    _, results, boards = run(tmp_path, suite)
    assert [r.status for r in results] == ["REUSED"]
    assert boards[0].rank_by == ["fd_pixels_n200_train"]  # the default: the first FD column


def test_failing_jobs_are_isolated_and_recorded(tmp_path):
    suite = make_suite(
        tmp_path,
        """\
        - name: nan
          model: plugin_models:NaNModel
        - name: crash
          model: plugin_models:CrashModel
        - name: wrong-shape
          model: plugin_models:WrongShapeModel
        - name: good
          model: plugin_models:MeanModel
    """,
    )
    runner, results, boards = run(tmp_path, suite)
    status = {r.job.entry.name: r for r in results}
    assert status["good"].status == "FINISHED"
    assert "NaN" in status["nan"].error
    assert "boom in fit" in status["crash"].error
    assert "expected (200, 1, 8, 8)" in status["wrong-shape"].error
    runs = {r.data.tags["genbench.model"]: r for r in runner_job_runs(runner)}
    assert runs["nan"].info.status == "FAILED" and "NaN" in runs["nan"].data.tags["genbench.error"]
    assert {f["model"] for f in boards[0].failures} == {"nan", "crash", "wrong-shape"}
    assert list(boards[0].table.index) == ["good"]


def test_a_baseline_whose_samples_overflow_fails_alone(tmp_path):
    """guidance 1e39 is finite in the suite and infinite in float32: the samples are NaN or
    inf before quantizing, which made them black pixels that reached the leaderboard."""
    suite = make_suite(
        tmp_path,
        """\
        - name: overflow
          model: cddpm
          options: {width: 8, steps: 2, batch_size: 16, guidance: 1.0e+39, device: cpu}
        - name: copier
    """,
    )
    runner, results, boards = run(tmp_path, suite)
    status = {r.job.entry.name: r for r in results}
    assert status["copier"].status == "FINISHED"
    assert status["overflow"].status == "FAILED"
    assert "samples contain NaN or inf" in status["overflow"].error
    assert list(boards[0].table.index) == ["copier"]


def test_killed_suite_resumes_without_duplicates(tmp_path):
    suite = make_suite(
        tmp_path,
        """\
        - name: first
          model: plugin_models:MeanModel
        - name: killer
          model: plugin_models:KillOnceModel
        - name: last
          model: plugin_models:MeanModel
          options: {noise: 3.0}
    """,
    )
    env = {"GENBENCH_KILL_FLAG": str(tmp_path / "flag")}
    out = tmp_path / "out"
    # one job at a time: the job's SIGKILL kills genbench itself
    # (tests/executors/test_local_executor.py kills a parallel run's driver)
    first = run_cli("run", str(suite), "--out", str(out), "--jobs", "1", env=env)
    assert first.returncode == -9, first.stderr  # SIGKILL mid-suite
    second = run_cli("run", str(suite), "--out", str(out), env=env)
    assert second.returncode == 0, second.stderr
    assert "1 reused" in second.stdout
    runs = job_runs(Store(default_tracking_uri(out)), "tiny")
    finished = [r.data.tags["genbench.model"] for r in runs if r.info.status == "FINISHED"]
    assert sorted(finished) == ["first", "killer", "last"]
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert [r.data.tags["genbench.model"] for r in killed] == ["killer"]
    assert (out / "leaderboard.md").read_text().count("| killer |") == 1


def test_job_runs_carry_provenance(tmp_path):
    suite = make_suite(tmp_path, "- name: m\n  model: plugin_models:MeanModel\n", seeds="[3]")
    runner, _, _ = run(tmp_path, suite)
    [r] = runner_job_runs(runner)
    tags = r.data.tags
    assert tags["version.torch"] == version("torch") and tags["version.genbench"]
    assert len(tags["git_commit"]) == 40 or tags["git_commit"] == "unknown"
    assert tags["device"] == "cpu" and tags["device_name"].endswith(f"{os.cpu_count()} cores")
    assert tags["torch_threads"] == str(torch.get_num_threads())
    assert tags["genbench.seed"] == "3" and tags["genbench.dataset_hash"]
    assert tags["genbench.suite"] == "tiny" and tags["mlflow.parentRunId"]
    assert tags["budget_spent_steps"] == "3" and float(tags["time.fit_or_load_s"]) >= 0
    assert r.data.params["seed"] == "3" and r.data.params["sample_seed"] == str(sample_seed(3))


def test_cli_run_writes_leaderboard_and_mlflow_store(tmp_path):
    suite = make_suite(tmp_path, "- name: copier\n- name: pixel-gaussian\n", name="cli")
    res = run_cli("run", str(suite), "--out", str(tmp_path / "o"))
    assert res.returncode == 0, res.stderr
    for f in ("leaderboard.md", "leaderboard.csv", "leaderboard.html", "mlruns/mlflow.db"):
        assert (tmp_path / "o" / f).exists(), f
    assert "| ref | copier |" in res.stdout
    again = run_cli("report", "--out", str(tmp_path / "o"))
    assert again.returncode == 0 and "| ref | pixel-gaussian |" in again.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "missing.yaml"], "suite file missing.yaml not found"),
        (
            ["run", "suites/digits.yaml", "--device", "cuda:0"]
            if not torch.cuda.is_available()
            else ["run", "suites/digits.yaml", "--device", "tpu"],
            "device",
        ),
        (
            ["run", "suites/digits.yaml", "--tracking-uri", "bogus://nowhere"],
            "cannot open MLflow tracking URI",
        ),
        (["report", "--out", "/nonexistent-dir"], "no MLflow store"),
    ],
)
def test_cli_errors_are_one_line_exit_2(tmp_path, args, message):
    res = run_cli(*args, cwd=ROOT)
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in res.stderr


def test_unwritable_output_folder(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/genbench-out"  # not writable even for root
    else:
        target = str(tmp_path / "ro" / "out")
        (tmp_path / "ro").mkdir(mode=0o500)
    res = run_cli("run", "suites/digits.yaml", "--out", target)
    assert res.returncode == 2 and "not writable" in res.stderr


def test_two_labels_with_one_config_are_two_rows_sharing_one_fit(tmp_path):
    suite = make_suite(
        tmp_path,
        """\
        - name: first
          model: plugin_models:MeanModel
        - name: twin
          model: plugin_models:MeanModel
    """,
    )
    plugin_models.MeanModel.fits = 0
    _, results, boards = run(tmp_path, suite)
    assert [r.status for r in results] == ["FINISHED", "FINISHED"]
    assert plugin_models.MeanModel.fits == 1  # the twin reuses the cached checkpoint
    assert sorted(boards[0].table.index) == ["first", "twin"]
    # the report draws one training-loss panel for the model both rows share
    [(models, fit)] = by_trained_model(boards[0]).items()
    assert sorted(models) == ["first", "twin"] and fit == models[0]


def test_new_model_added_to_an_existing_folder_is_ranked_among_cached_baselines(tmp_path):
    baselines = """\
        - name: noisy
          model: plugin_models:MeanModel
          options: {noise: 60.0}
        - name: pixel-gaussian
    """
    suite = make_suite(tmp_path, baselines)
    _, first, before = run(tmp_path, suite)
    assert [r.status for r in first] == ["FINISHED", "FINISHED"]

    # the newcomer is a samples file of real training digits, so it must rank first
    from bench.data import load_dataset

    np.savez(tmp_path / "new.npz", load_dataset("digits").train.x[:300].numpy())
    suite.write_text(suite.read_text() + "  - name: newcomer\n    samples: new.npz\n")
    plugin_models.MeanModel.fits = 0
    _, results, boards = run(tmp_path, suite)
    assert [r.status for r in results] == ["REUSED", "REUSED", "FINISHED"]
    assert plugin_models.MeanModel.fits == 0
    table = boards[0].table
    col = ("fd_pixels_n200_train", "mean")
    assert list(table.index)[0] == "newcomer"
    for name in ("noisy", "pixel-gaussian"):  # baselines keep their cached values
        assert table.loc[name, col] == before[0].table.loc[name, col]
    assert table.loc["newcomer", col] < table[col].drop("newcomer").min()


def test_throughput_sweep_feeds_the_column_and_the_batch_size_plot(tmp_path):
    suite = make_suite(
        tmp_path, "- name: mean\n  model: plugin_models:MeanModel\n", metrics="[throughput]"
    )
    suite.write_text(suite.read_text() + "throughput_batch_sizes: [16, 1, 4]\n")
    runner, results, boards = run(tmp_path, suite)
    assert results[0].status == "FINISHED", results[0].error
    assert boards[0].metrics == ["throughput_img_s_b16_cpu"]  # the largest size is the column
    [job] = runner_job_runs(runner)
    path = runner.store.client.download_artifacts(
        job.info.run_id, "report_data.json", str(tmp_path)
    )
    rows = json.loads(open(path).read())["throughput"]
    assert [r["batch_size"] for r in rows] == [1, 4, 16]
    assert all(r["img_s"] > 0 for r in rows)
    assert rows[-1]["img_s"] == job.data.metrics["throughput_img_s_b16_cpu"]
    html = (tmp_path / "out" / "leaderboard.html").read_text()
    assert "Sampling throughput against batch size" in html


def test_steps_come_from_spent_else_progress_else_are_unknown_with_a_warning(tmp_path, capfd):
    suite = make_suite(
        tmp_path,
        """\
        - name: returns-spent
          model: plugin_models:MeanModel
        - name: reports-progress
          model: plugin_models:ReportsStepsModel
        - name: silent
          model: plugin_models:SilentModel
    """,
    )
    capfd.readouterr()
    runner, results, boards = run(tmp_path, suite)
    assert [r.status for r in results] == ["FINISHED"] * 3, [r.error for r in results]
    records = {r.model: r for r in runner.store.records("tiny")}
    assert {m: (r.budget_spent_steps, r.steps_from) for m, r in records.items()} == {
        "returns-spent": (3, "returned"),
        "reports-progress": (3, "progress"),
        "silent": (0, "unknown"),
    }
    warnings = [line for line in capfd.readouterr().err.splitlines() if "warning:" in line]
    assert len(warnings) == 1 and "silent" in warnings[0] and "Spent(steps=...)" in warnings[0]
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| silent | 1 | unknown |" in md and "| reports-progress | 1 | 3 |" in md


def test_fit_returning_something_other_than_spent_fails_its_job_with_one_line(tmp_path):
    suite = make_suite(tmp_path, "- name: int\n  model: plugin_models:ReturnsIntModel\n")
    _, results, _ = run(tmp_path, suite)
    [r] = results
    assert r.status == "FAILED"
    assert "fit returned int; return bench.models.Spent(steps=...)" in r.error


@pytest.fixture
def rescanned_distributions():
    """bench.origin scans installed distributions once per process: a test that installs
    one scans them again, and again after it (its distribution is gone then)."""
    origin._distributions.cache_clear()
    origin._owned.cache_clear()
    yield
    origin._distributions.cache_clear()
    origin._owned.cache_clear()


def test_user_inputs_are_hashed_and_marked_on_the_leaderboard(
    tmp_path, monkeypatch, rescanned_distributions
):
    import hashlib

    install_test_package(tmp_path, monkeypatch, "top_level.txt", "plugin_models\n")
    record = tmp_path / "site" / "genbench_test_plugin-0.1.dist-info" / "RECORD"
    module = os.path.relpath(ROOT / "tests" / "plugin_models.py", tmp_path / "site")
    record.write_text(f"{module},,\n")  # the distribution holds the plug-in's module
    ckpt = tmp_path / "mean.pt"
    torch.save({"mean": torch.full((1, 8, 8), 100.0)}, ckpt)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", rng.integers(0, 256, (300, 1, 8, 8), dtype=np.uint8))
    suite = make_suite(
        tmp_path,
        """\
        - name: from-checkpoint
          model: plugin_models:MeanModel
          checkpoint: mean.pt
        - name: from-samples
          samples: s.npz
        - name: trained
          model: plugin_models:MeanModel
    """,
    )
    runner, results, _ = run(tmp_path, suite)
    assert [r.status for r in results] == ["FINISHED"] * 3, [r.error for r in results]
    records = {r.model: r for r in runner.store.records("tiny")}
    sha = {p: hashlib.sha256((tmp_path / p).read_bytes()).hexdigest() for p in ("mean.pt", "s.npz")}
    module = hashlib.sha256((ROOT / "tests" / "plugin_models.py").read_bytes()).hexdigest()
    ck, sf, tr = records["from-checkpoint"], records["from-samples"], records["trained"]
    assert (ck.checkpoint_sha256, ck.samples_sha256) == (sha["mean.pt"], "")
    assert (sf.samples_sha256, sf.checkpoint_sha256) == (sha["s.npz"], "")
    assert tr.model_version == ck.model_version == "genbench-test-plugin==0.1"
    assert tr.model_source_sha256 == module[:16]
    assert sf.model_version == sf.model_source_sha256 == ""  # nothing of the user's code ran
    assert "budget_steps" not in sf.params and "budget_seconds" not in sf.params
    assert tr.params["budget_steps"] == "3"
    assert tr.provenance["model_version"] == "genbench-test-plugin==0.1"
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| from-checkpoint | 1 | checkpoint |" in md
    assert "| from-samples | 1 | samples file |" in md
    assert "| trained | 1 | 3 |" in md
    assert '"samples file" rows were trained elsewhere' in md


def test_a_rejected_run_creates_nothing_in_its_output_folder(tmp_path):
    suite = make_suite(tmp_path, "- name: a\n  model: plugin_models:MeanModel\n")
    bad = make_suite(
        tmp_path, "- name: a\n  model: plugin_models:MeanModel\n  options: {nope: 1}\n", name="bad"
    )
    fresh = tmp_path / "fresh" / "out"
    res = run_cli("run", str(bad), "--out", str(fresh))
    assert res.returncode == 2 and "bad options" in res.stderr, res.stderr
    assert not (tmp_path / "fresh").exists()
    # an existing folder (a previous run's) gains nothing either
    used = tmp_path / "used"
    assert run_cli("run", str(suite), "--out", str(used)).returncode == 0
    before = sorted(p.relative_to(used) for p in used.rglob("*"))
    res = run_cli("run", str(bad), "--out", str(used))
    assert res.returncode == 2 and "bad options" in res.stderr, res.stderr
    assert sorted(p.relative_to(used) for p in used.rglob("*")) == before


def test_a_fit_being_trained_elsewhere_is_waited_for_then_loaded(tmp_path):
    """Another process holds the fit key's lock while it trains the model: a job that
    shares the fit (a sampling sweep) waits, then loads that checkpoint instead of
    training the model a second time."""
    import threading

    from test_cache import WatchedCache

    from bench.cache import Cache
    from bench.data import load_dataset
    from bench.job import fit_or_load, model_class, new_record
    from bench.suite import expand_jobs

    suite = load_suite(make_suite(tmp_path, "- name: m\n  model: plugin_models:MeanModel\n"))
    [job] = expand_jobs(suite)
    data = load_dataset("digits")
    cls = model_class(job)
    record = new_record(job, data, {}, cls)
    cache, elsewhere = WatchedCache(tmp_path / "cache"), Cache(tmp_path / "cache")
    plugin_models.MeanModel.fits = 0
    with elsewhere.lock("checkpoints", record.fit_key):
        thread = threading.Thread(
            target=fit_or_load, args=(job, data, record.fit_key, cache, "cpu", record, cls)
        )
        thread.start()
        assert cache.touched.wait(60)
        trained = {"mean": torch.full((1, 8, 8), 7.0)}
        info = {"steps": 3, "seconds": 1.0, "losses": [], "steps_from": "returned"}
        elsewhere.save("checkpoints", record.fit_key, {"state": trained, "info": info})
    thread.join(60)
    assert plugin_models.MeanModel.fits == 0 and record.fit_cached is True


def test_the_summary_counts_cached_fits_apart_from_training_and_reuse(tmp_path):
    """#26: a rerun whose jobs were new (other metrics) but whose models came from the cache
    said "2 run, 0 reused", as if it had trained them again."""
    models = "- name: m\n  model: plugin_models:MeanModel\n- name: copier\n"
    first = write_suite(tmp_path, models, metrics="[fd_pixels]")
    res = run_cli("run", str(first), "--out", str(tmp_path / "o"), "--jobs", "1")
    assert res.returncode == 0, res.stderr
    assert "2 jobs: 2 run (2 trained a model, 0 sampled a cached one), 0 reused" in res.stdout
    again = run_cli("run", str(first), "--out", str(tmp_path / "o"), "--jobs", "1")
    assert "2 jobs: 0 run (0 trained a model, 0 sampled a cached one), 2 reused" in again.stdout
    other = write_suite(tmp_path, models, metrics="[fd_pixels, kid_pixels]")
    res = run_cli("run", str(other), "--out", str(tmp_path / "o"), "--jobs", "1")
    assert res.returncode == 0, res.stderr
    assert "2 jobs: 2 run (0 trained a model, 2 sampled a cached one), 0 reused" in res.stdout


BRIGHT = "- name: bright\n  model: plugin_models:ClassBrightnessModel\n"


def test_the_runner_takes_the_plan_and_makes_no_torch_free_check_again(tmp_path, monkeypatch):
    """#27: cli.py checked the inputs, the Runner checked them all again (datasets reread,
    samples files and signatures checked twice)."""
    from bench import plan as planning
    from bench import runner as running

    suite = load_suite(make_suite(tmp_path, BRIGHT))
    plan = planning.plan_suite(suite, tmp_path / "out")

    def again(*args, **kwargs):
        raise AssertionError("checked again")

    for module, name in [(planning, "dataset_arrays"), (planning, "model_signature"),
                         (running, "plan_suite")]:  # fmt: skip
        monkeypatch.setattr(module, name, again)
    runner = Runner(suite, RunOptions(tmp_path / "out"), plan)
    [result] = runner.run()
    assert result.status == "FINISHED"


def test_a_job_resolves_its_model_once(tmp_path, monkeypatch):
    """#27: resolve_model ran four times per job of a class-conditional model (its record,
    its keys, their label source twice, its fit)."""
    from bench import job as job_module
    from bench.worker import JobSpec, run_job

    runner = Runner(load_suite(make_suite(tmp_path, BRIGHT)), RunOptions(tmp_path / "out"))
    [job] = runner.plan.jobs
    resolved = []
    real = job_module.resolve_model
    monkeypatch.setattr(job_module, "resolve_model", lambda ref: resolved.append(ref) or real(ref))
    result = run_job(JobSpec(job, runner.opts, runner.exp_id, None))
    assert result.status == "FINISHED" and result.fit == "trained"
    assert resolved == ["plugin_models:ClassBrightnessModel"]
