"""A translation suite end to end: models[].datasets picks the jobs, jobs are tracked in
MLflow with the generation record, samples.png is source | translation | target rows,
and the report rebuilt from MLflow alone has a leaderboard per task."""

import io

import pytest
from conftest import job_runs, write_suite
from PIL import Image

from bench.job import RunOptions
from bench.report.render import write_report
from bench.runner import Runner
from bench.suite import expand_jobs, load_suite

MODELS = """\
- name: identity
- name: oracle
  datasets: [edges2mnist]
"""


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("translation")
    path = write_suite(
        tmp,
        MODELS,
        name="tr",
        datasets="[edges2mnist, digits2mnist]",
        n_samples=40,
        metrics="[psnr, label_kept, fd_target]",
    )
    runner = Runner(load_suite(path), RunOptions(tmp / "out"))
    results = runner.run()
    return runner, results, tmp


def test_entry_datasets_pick_the_jobs(ran):
    runner, results, _ = ran
    labels = sorted(job.label for job in expand_jobs(runner.suite))
    assert labels == [
        "digits2mnist/identity/seed0",
        "edges2mnist/identity/seed0",
        "edges2mnist/oracle/seed0",
    ]
    assert [r.status for r in results] == ["FINISHED"] * 3


def test_translation_jobs_are_tracked_like_generation_jobs(ran):
    runner, _, _ = ran
    runs = {
        (r.data.tags["genbench.dataset"], r.data.tags["genbench.model"]): r
        for r in job_runs(runner.store, "tr")
    }
    oracle = runs["edges2mnist", "oracle"]
    assert oracle.data.metrics["psnr"] == 100 and "label_kept" in oracle.data.metrics
    assert "psnr" not in runs["digits2mnist", "identity"].data.metrics  # unpaired: skipped
    assert oracle.data.tags["genbench.dataset_hash"] and oracle.data.tags["budget_spent_steps"]
    png = runner.store.artifact(oracle.info.run_id, "samples.png")
    width, height = Image.open(io.BytesIO(png)).size
    # 40 translations: two blocks of 16 columns, each three rows (source, translation, target)
    assert height / width == pytest.approx(6 / 16, rel=0.05)


def test_the_report_rebuilds_a_board_per_task_from_mlflow(ran):
    runner, _, tmp = ran
    boards = write_report(runner.store, tmp / "again", "tr")
    assert sorted(b.dataset for b in boards) == ["digits2mnist", "edges2mnist"]
    md = (tmp / "again" / "leaderboard.md").read_text()
    assert "## tr / edges2mnist" in md and "| ref | oracle |" in md


def test_a_samples_file_is_scored_as_translations_of_the_sources_in_order(tmp_path):
    import numpy as np

    from bench.data import dataset_arrays

    np.savez(tmp_path / "true.npz", images=dataset_arrays("edges2mnist").test.x[:40])
    path = write_suite(
        tmp_path,
        "- name: file\n  samples: true.npz\n",
        name="trfile",
        datasets="[edges2mnist]",
        n_samples=40,
        metrics="[psnr]",
    )
    runner = Runner(load_suite(path), RunOptions(tmp_path / "out"))
    [result] = runner.run()
    [run] = job_runs(runner.store, "trfile")
    assert result.status == "FINISHED" and run.data.metrics["psnr"] == 100
