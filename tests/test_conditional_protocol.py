"""The class-conditional protocol: which models are conditional, the labels the harness asks
for, labels in samples files, and a conditional plug-in model scored in a suite."""

import json

import numpy as np
import plugin_models
import pytest
import torch
from conftest import run_cli, write_suite

from bench.data import load_dataset
from bench.errors import UserError
from bench.job import RunOptions, asked_labels, job_keys, model_class
from bench.models import build_model, is_conditional
from bench.runner import Runner
from bench.samples import load_sample_labels
from bench.suite import expand_jobs, load_suite

COND_MODEL = "- name: bright\n  model: plugin_models:ClassBrightnessModel\n"


class Takes:
    def __init__(self, num_classes: int = 3):
        self.num_classes = num_classes


@pytest.mark.parametrize(
    "value, conditional",
    [(10, True), (1, True), (0, False), (-2, False), (None, False), (True, False), (2.0, False)],
)
def test_is_conditional_reads_an_int_num_classes(value, conditional):
    model = Takes()
    model.num_classes = value
    assert is_conditional(model) is conditional


def test_is_conditional_of_a_class_reads_its_init():
    assert is_conditional(Takes) and is_conditional(plugin_models.ClassBrightnessModel)
    assert not is_conditional(plugin_models.MeanModel)


def test_build_model_offers_the_datasets_classes():
    digits = load_dataset("digits")
    model = build_model(plugin_models.ClassBrightnessModel, digits, {})
    assert model.num_classes == digits.num_classes == 10
    assert not hasattr(build_model(plugin_models.MeanModel, digits, {}), "num_classes")
    with pytest.raises(UserError, match="has num_classes=4 and dataset 'digits' has 10"):
        build_model(plugin_models.ClassBrightnessModel, digits, {"num_classes": 4})


@pytest.mark.parametrize("n, k", [(23, 10), (10, 10), (7, 3), (1, 4)])
def test_balanced_labels_cycle_through_the_classes(n, k):
    labels = asked_labels(n, "balanced", k, torch.zeros(0), torch.Generator())
    assert labels.dtype == torch.int64 and labels.shape == (n,)
    counts = torch.bincount(labels, minlength=k)
    # n // k per class, the first n % k classes one more
    want = torch.tensor([n // k + (c < n % k) for c in range(k)])
    assert torch.equal(counts, want)
    for m in range(1, n + 1):  # every prefix is balanced
        prefix = torch.bincount(labels[:m], minlength=k)
        assert int(prefix.max() - prefix.min()) <= 1


def test_train_labels_follow_the_training_frequencies():
    train = torch.tensor([0] * 70 + [1] * 20 + [2] * 10)
    n = 20_000
    draw = asked_labels(n, "train", 3, train, torch.Generator().manual_seed(5))
    again = asked_labels(n, "train", 3, train, torch.Generator().manual_seed(5))
    assert torch.equal(draw, again)
    counts = torch.bincount(draw, minlength=3).double()
    p = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    sd = (n * p * (1 - p)).sqrt()
    assert ((counts - n * p).abs() < 5 * sd).all(), counts
    other = asked_labels(n, "train", 3, train, torch.Generator().manual_seed(6))
    assert not torch.equal(draw, other)


def test_unknown_label_mode():
    with pytest.raises(ValueError, match="unknown label mode"):
        asked_labels(4, "uniform", 2, torch.zeros(0), torch.Generator())


def write_labelled(path, labels, images=None):
    labels = np.asarray(labels)
    if images is None:
        images = np.full((len(labels), 1, 8, 8), 7, np.uint8)
    np.savez(path, images=images, labels=labels)
    return path


def test_samples_file_labels(tmp_path):
    digits = load_dataset("digits")
    y = np.arange(60) % 10
    path = write_labelled(tmp_path / "s.npz", y.astype(np.uint8))
    got = load_sample_labels(path, digits, 50)
    assert got.dtype == torch.int64 and torch.equal(got, torch.from_numpy(y[:50]))
    np.savez(tmp_path / "plain.npz", images=np.zeros((60, 1, 8, 8), np.uint8))
    assert load_sample_labels(tmp_path / "plain.npz", digits, 50) is None


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.arange(59) % 10, "holds 59 labels for 60 samples"),
        ((np.arange(60) % 10).astype(np.float32), "labels are a 1-D integer array"),
        ((np.arange(60) % 10).reshape(60, 1), "labels are a 1-D integer array"),
        (np.arange(60) % 11, "holds label 10; dataset 'digits' has classes 0..9"),
        (np.arange(60) % 10 - 1, "holds label -1"),
        (np.arange(60) % 2 == 0, "labels are a 1-D integer array"),
    ],
)
def test_samples_file_labels_refused(tmp_path, labels, message):
    images = np.zeros((60, 1, 8, 8), np.uint8)
    path = write_labelled(tmp_path / "s.npz", labels, images)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_sample_labels(path, load_dataset("digits"), 50)


def keys_of(tmp_path, models: str, labels: str = "") -> dict:
    extra = f"labels: {labels}\n" if labels else ""
    suite = load_suite(write_suite(tmp_path, models, extra=extra))
    [job] = expand_jobs(suite)
    return job_keys(job, load_dataset("digits"), model_class(job))


def test_label_mode_is_part_of_conditional_samples_keys_only(tmp_path):
    plain = "- name: m\n  model: plugin_models:MeanModel\n"
    assert keys_of(tmp_path, plain) == keys_of(tmp_path, plain, "train")
    balanced, train = keys_of(tmp_path, COND_MODEL), keys_of(tmp_path, COND_MODEL, "train")
    assert balanced["fit"] == train["fit"]
    assert balanced["samples"] != train["samples"] and balanced["job"] != train["job"]
    assert keys_of(tmp_path, COND_MODEL, "balanced") == balanced  # the default


def test_conditional_plugin_model_in_a_suite(tmp_path):
    suite = write_suite(
        tmp_path,
        COND_MODEL + "- name: shuffler\n  model: label-shuffler\n",
        n_samples=100,
        metrics="[fd_pixels, label_match]",
        extra="plugins: [plugin_metrics]\n",
    )
    runner = Runner(load_suite(suite), RunOptions(tmp_path / "out"))
    results = runner.run()
    assert [r.status for r in results] == ["FINISHED", "FINISHED"]
    runs = {r.data.tags["genbench.model"]: r for r in runner_runs(runner)}
    bright = runs["bright"].data
    assert bright.metrics["label_match"] == 1.0
    assert bright.metrics["fd_pixels_n100_train"] > 0
    assert bright.params["conditional"] == "True" and bright.params["labels"] == "balanced"
    asked = runner.store.artifact(runs["bright"].info.run_id, "sample_labels.json")
    assert json.loads(asked) == [i % 10 for i in range(100)]
    # real digits images are not brightness bands: the column is there, the value low
    assert runs["shuffler"].data.metrics["label_match"] < 0.5
    assert "fd_pixels_n100_train" in runs["shuffler"].data.metrics


def runner_runs(runner):
    from conftest import job_runs

    return job_runs(runner.store, runner.suite.name)


def brightness_bands(labels: np.ndarray) -> np.ndarray:
    return np.repeat((20 * labels + 10).astype(np.uint8), 64).reshape(-1, 1, 8, 8)


def test_samples_file_with_labels_in_a_suite(tmp_path):
    y = np.arange(60) % 10
    write_labelled(tmp_path / "s.npz", y, brightness_bands(y))
    suite = write_suite(
        tmp_path,
        "- name: s\n  samples: s.npz\n",
        n_samples=50,
        metrics="[fd_pixels, label_match]",
        extra="plugins: [plugin_metrics]\n",
    )
    res = run_cli("run", str(suite), "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    assert "label_match=1" in res.stdout + res.stderr


@pytest.mark.parametrize("shift, expected", [(0, 1.0), (1, 0.0)])
def test_eval_scores_against_the_files_labels(tmp_path, shift, expected):
    y = np.arange(60) % 10
    write_labelled(tmp_path / "s.npz", (y + shift) % 10, brightness_bands(y))
    res = run_cli(
        "eval", "--samples", str(tmp_path / "s.npz"), "--dataset", "digits",
        "--metrics", "label_match,fd_pixels", "--json",
        env={"GENBENCH_PLUGINS": "plugin_metrics"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    metrics = json.loads(res.stdout)["metrics"]
    assert metrics["label_match"] == expected and "fd_pixels_n60_train" in metrics


def test_eval_refuses_a_conditional_metric_without_labels(tmp_path):
    np.savez(tmp_path / "s.npz", images=np.zeros((60, 1, 8, 8), np.uint8))
    res = run_cli(
        "eval", "--samples", str(tmp_path / "s.npz"), "--dataset", "digits",
        "--metrics", "fd_pixels,label_match",
        env={"GENBENCH_PLUGINS": "plugin_metrics"},
    )  # fmt: skip
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "metric 'label_match' needs the class each sample was asked for" in lines[0]
    assert "s.npz holds no labels" in lines[0]


def test_throughput_times_a_conditional_model_on_balanced_labels():
    from bench.throughput import sweep

    model = build_model(plugin_models.ClassBrightnessModel, load_dataset("digits"), {})
    [row] = sweep(model, torch.device("cpu"), [20], repeats=1, count_flops=False)
    assert row["img_s"] > 0


def test_sample_figure_rows_are_classes():
    from bench.grids import class_rows

    images = torch.arange(30, dtype=torch.uint8).view(30, 1, 1, 1)
    labels = torch.tensor([(i * 7) % 3 for i in range(30)])  # 10 per class, interleaved
    rows = class_rows(images, labels, ncol=12).view(3, 12)
    for c in range(3):
        assert torch.equal(rows[c, :10], images.flatten()[labels == c])
        assert (rows[c, 10:] == 255).all()
    assert class_rows(images, labels, rows=2, ncol=4).shape == (8, 1, 1, 1)
