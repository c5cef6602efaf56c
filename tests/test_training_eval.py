"""Metrics during training (suite `eval_every`): every training job scores itself on the way,
each value an MLflow metric history with its step; `keep: best` keeps the best step's model
by FD on the chosen split; the report plots metric against step."""

import plugin_models
import pytest
from conftest import write_suite

from bench.job import RunOptions
from bench.report.render import write_report
from bench.runner import Runner
from bench.suite import load_suite
from bench.training_eval import TrainingEval

EVAL = "fd_pixels_n50_train"


def run_suite(tmp_path, models: str, extra: str, seeds="[0]"):
    suite = write_suite(tmp_path, models, steps=6, n_samples=60, seeds=seeds, extra=extra)
    runner = Runner(load_suite(suite), RunOptions(tmp_path / "out"))
    results = runner.run()
    assert all(r.status == "FINISHED" for r in results), [r.error for r in results]
    return runner


def test_histories_have_steps_for_baselines_and_plug_ins_and_the_report_plots_them(tmp_path):
    store = run_suite(
        tmp_path,
        "- name: dcgan\n- name: mean\n  model: plugin_models:MeanModel\n",
        "eval_every: 2\neval_metrics: [fd_pixels]\neval_n: 50\n",
        seeds="[0, 1]",
    )
    store = store.store
    records = store.records("tiny")
    assert len(records) == 4
    for r in records:
        history = store.eval_history(r.run_id)
        assert set(history) == {EVAL, "keep_fd_test"}, r.model
        assert [step for step, _ in history[EVAL]] == [2, 4, 6], r.model
        assert all(value > 0 for _, value in history[EVAL])
        assert EVAL not in r.metrics and "fd_pixels_n60_train" in r.metrics  # the full protocol
        assert r.timings["eval_in_fit_s"] > 0 and r.kept_step is None
    write_report(store, tmp_path / "out", "tiny")
    html = (tmp_path / "out" / "leaderboard.html").read_text()
    assert "Metrics during training" in html and 'alt="fd_pixels_n50_train against step"' in html


@pytest.mark.parametrize("split", ["train", "test"])
def test_keep_best_keeps_the_model_of_the_best_step(tmp_path, split):
    runner = run_suite(
        tmp_path,
        "- name: peak\n  model: plugin_models:PeakModel\n",
        f"eval_every: 1\neval_n: 50\nkeep: best\nkeep_split: {split}\n",
    )
    (record,) = runner.store.records("tiny")
    assert record.kept_step == 4
    history = runner.store.eval_history(record.run_id)[f"keep_fd_{split}"]
    assert min(history, key=lambda p: p[1])[0] == 4
    # the row scores the kept model (shift 0), not the last step's (shift 80)
    (tmp_path / "last").mkdir()
    last = run_suite(tmp_path / "last", "- name: peak\n  model: plugin_models:PeakModel\n", "")
    (final,) = last.store.records("tiny")
    assert record.metrics["fd_pixels_n60_train"] < final.metrics["fd_pixels_n60_train"] / 5


def test_evaluation_leaves_the_networks_in_the_mode_the_fit_had_them(tmp_path):
    import torch

    class Net:
        def __init__(self):
            self.net = torch.nn.Sequential(torch.nn.BatchNorm1d(2))
            self.net.train()

        def sample(self, n, *, generator, batch_size):
            self.net.eval()
            return torch.zeros((n, 1, 8, 8), dtype=torch.uint8)

    from bench.data import load_dataset

    suite = load_suite(write_suite(tmp_path, "- name: copier\n", extra="eval_every: 1\n"))
    model = Net()
    TrainingEval(suite, load_dataset("digits"), model, "cpu").draw()
    assert model.net.training and model.net[0].training
    assert plugin_models.PeakModel  # the keep-best test's model is importable
