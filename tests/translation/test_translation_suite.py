"""A translation suite end to end: models[].datasets picks the jobs, jobs are tracked in
MLflow with the generation record, samples.png is source | translation | target rows,
and the report rebuilt from MLflow alone has a leaderboard per task."""

import io
import json

import numpy as np
import pytest
from conftest import job_runs, run_cli, write_suite
from PIL import Image

from bench.data import dataset_arrays
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


SCORED = "[psnr, ssim, l1, label_kept, fd_target]"


def export(out, model: str, dataset: str, dest) -> dict:
    res = run_cli("samples", "export", "--out", str(out), "--model", model, "--dataset", dataset,
                  "--to", str(dest))  # fmt: skip
    assert res.returncode == 0, res.stderr
    with np.load(dest) as f:
        return dict(f)


def scored_files(tmp_path, files: dict[str, dict], dataset: str) -> dict[str, dict]:
    """Label -> metrics of each file (label -> its arrays) scored as a suite's samples."""
    models = ""
    for label, arrays in files.items():
        np.savez(tmp_path / f"{label}.npz", **arrays)
        models += f"- name: {label}\n  samples: {label}.npz\n"
    n = len(next(iter(files.values()))["images"])
    path = write_suite(
        tmp_path, models, name="trf", datasets=f"[{dataset}]", n_samples=n, metrics=SCORED
    )
    runner = Runner(load_suite(path), RunOptions(tmp_path / "out"))
    assert {r.status for r in runner.run()} == {"FINISHED"}
    return {r.data.tags["genbench.model"]: r.data.metrics for r in job_runs(runner.store, "trf")}


@pytest.mark.parametrize(
    "model, dataset",
    [("oracle", "edges2mnist"), ("identity", "edges2mnist"), ("identity", "digits2mnist")],
)
def test_shuffled_translations_with_their_source_indices_score_as_in_order(
    ran, tmp_path, model, dataset
):
    """A samples file may carry the source test row of each translation (source_indices):
    the paired metrics and label_kept then compare each with its own source and target.
    Without them the file is read as rows 0 .. n-1, as before."""
    _, _, tmp = ran
    arrays = export(tmp / "out", model, dataset, tmp_path / "export.npz")
    assert arrays["source_indices"].tolist() == list(range(40))  # a job translates 0 .. 39
    images = arrays["images"]
    order = np.random.default_rng(0).permutation(40)
    scores = scored_files(
        tmp_path,
        {
            "in_order": {"images": images},
            "shuffled": {"images": images[order], "source_indices": order},
            "shuffled_alone": {"images": images[order]},
        },
        dataset,
    )
    assert scores["shuffled"] == pytest.approx(scores["in_order"], rel=1e-9)
    paired = dataset == "edges2mnist"
    first = "psnr" if paired else "label_kept"
    assert scores["shuffled_alone"][first] < scores["in_order"][first]  # wrong pairs
    if model == "oracle":
        assert scores["shuffled"]["psnr"] == 100 and scores["shuffled_alone"]["psnr"] < 30


def test_a_subset_of_sources_is_scored_against_its_own_targets(ran, tmp_path):
    """Translations of source rows 100 .. 139 only (the oracle's: the true targets)."""
    rows = np.arange(100, 140)[::-1].copy()
    targets = dataset_arrays("edges2mnist").test.x[rows]
    scores = scored_files(
        tmp_path, {"subset": {"images": targets, "source_indices": rows}}, "edges2mnist"
    )
    assert scores["subset"]["psnr"] == 100 and scores["subset"]["l1"] == 0


def test_eval_reads_the_source_indices_too(tmp_path):
    """`genbench eval --samples` scores a file with source_indices as a suite does."""
    from bench.translation import source

    identity = source(dataset_arrays("edges2mnist")).test.x[:30]  # sources as translations
    order = np.random.default_rng(1).permutation(30)
    np.savez(tmp_path / "in_order.npz", images=identity)
    np.savez(tmp_path / "shuffled.npz", images=identity[order], source_indices=order)
    np.savez(tmp_path / "shuffled_alone.npz", images=identity[order])
    scores = {}
    for name in ("in_order", "shuffled", "shuffled_alone"):
        res = run_cli("eval", "--samples", str(tmp_path / f"{name}.npz"), "--dataset",
                      "edges2mnist", "--metrics", "psnr,ssim,label_kept", "--json")  # fmt: skip
        assert res.returncode == 0, res.stderr
        scores[name] = json.loads(res.stdout)["metrics"]
    assert scores["shuffled"] == pytest.approx(scores["in_order"], rel=1e-9)
    assert scores["shuffled_alone"]["psnr"] != pytest.approx(scores["in_order"]["psnr"])
