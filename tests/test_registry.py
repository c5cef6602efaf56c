"""One place per concept: a metric, a reference model and an extractor each plug in with one
registration or attribute, and every part of genbench follows."""

import os

import numpy as np
import pytest
import torch
from conftest import ROOT, run_cli, write_suite

from bench.data import dataset_names, load_dataset, register_dataset
from bench.errors import UserError
from bench.features import default_extractor, register_extractor
from bench.metrics import (
    METRICS,
    artifacts_of,
    check_rank_metric,
    column_kind,
    column_order,
    direction,
    parse_metric,
    rankable,
    register_metric,
)
from bench.models import register_model
from bench.plugins import load_plugins
from bench.report.conditional import sweep_columns
from bench.report.leaderboard import primary_metric
from bench.scoring import ScoringContext, plan, score


def test_a_metric_registered_in_a_test_module_runs_ranks_and_is_listed(tmp_path):
    suite = write_suite(
        tmp_path,
        """\
        - name: copier
        - name: pixel-gaussian
        - name: mean
          model: plugin_models:MeanModel
          options: {noise: 0.0}
        """,
        name="plug",
        n_samples=100,
        metrics="[fd_pixels, brightness]",
        extra="plugins: [plugin_metrics]\nrank_by: [brightness_n100]\n",
    )
    res = run_cli("run", str(suite), "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    head = next(line for line in board.splitlines() if "brightness_n100" in line)
    assert "brightness_n100 ↑ (primary)" in head
    rows = [line for line in board.splitlines() if line.startswith("| 1 ")]
    assert rows and "| mean |" in rows[0]  # copier and pixel-gaussian are references
    mean_row = next(line for line in board.splitlines() if "| mean |" in line)
    assert "**" in mean_row.split("|")[-2]  # the best (only learned) value is bold
    listed = run_cli("list", "metrics", env={"GENBENCH_PLUGINS": "plugin_metrics"})
    assert "brightness: brightness_* ↑" in listed.stdout
    assert "Mean pixel value of the samples" in listed.stdout


def test_a_plugin_reference_model_lands_in_the_references_table(tmp_path):
    suite = write_suite(
        tmp_path,
        """\
        - name: mean
          model: plugin_models:MeanModel
        - name: mean-ref
          model: plugin_models:MeanReference
        """,
        name="refs",
        n_samples=60,
    )
    res = run_cli("run", str(suite), "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    ranked, refs = board.split("References (floor and ceiling):")
    assert "| mean |" in ranked and "mean-ref" not in ranked
    assert "| ref | mean-ref |" in refs


def test_registering_a_name_twice_is_an_error():
    load_plugins()  # the built-ins are registered
    assert "digits" in dataset_names()
    with pytest.raises(ValueError, match="registered twice"):
        register_metric("fd", columns={"fd_": "lower"})(lambda ctx, e: {})
    with pytest.raises(ValueError, match="registered twice"):
        register_model("ddpm")(object)
    with pytest.raises(ValueError, match="registered twice"):
        register_extractor("pixels")(lambda data, device, weights: None)
    with pytest.raises(ValueError, match="registered twice"):
        register_dataset("digits")(lambda root: None)


def test_directions_and_order_come_from_the_specs():
    assert direction("fd_classifier_n1000_train") == "lower"
    assert direction("fid_inception_clean_n50_train") == "lower"
    assert direction("kid_pixels_n100_std") is None
    assert direction("modes_reverse_kl") == "lower" and direction("modes_hq") == "higher"
    assert direction("ct_pixels") == "closer to 0" and direction("nn_gap_ratio_x") == "closer to 1"
    assert direction("class_kl_test_floor") is None and direction("nonsense") is None
    names = ["kid_pixels_n5", "throughput_img_s_b4_cpu", "fd_pixels_n5_train", "bits_per_dim_test"]
    assert sorted(names, key=column_order) == [
        "fd_pixels_n5_train", "throughput_img_s_b4_cpu", "kid_pixels_n5", "bits_per_dim_test",
    ]  # fmt: skip


def test_suite_names_resolve_to_metric_and_feature_space():
    assert [parse_metric(n)[0].name for n in ("fd_pixels", "fid_inception", "prdc")] == [
        "fd", "fd", "prdc",
    ]  # fmt: skip
    assert parse_metric("kid_inception")[1] == "inception" and parse_metric("prdc")[1] is None
    with pytest.raises(ValueError, match="unknown metric 'fd_nowhere'; choose one of"):
        parse_metric("fd_nowhere")


def folder_dataset(tmp_path, n=20):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    return load_dataset(f"folder:{tmp_path}")


def test_one_default_extractor_rule_for_run_and_eval(tmp_path):
    assert default_extractor(load_dataset("digits")) == "classifier"
    assert default_extractor(load_dataset("ring8")) == "pixels"
    assert default_extractor(folder_dataset(tmp_path)) == "inception"


def test_unlabelled_folder_plans_prdc_in_inception_and_refuses_classifier_metrics(tmp_path):
    data = folder_dataset(tmp_path)
    [p] = plan(["prdc"], data)
    assert p.extractors == ("inception",)
    with pytest.raises(UserError, match="'fd_classifier': extractor 'classifier' needs a labelled"):
        plan(["fd_classifier"], data)
    with pytest.raises(UserError, match="metric 'class_coverage' needs a labelled dataset"):
        plan(["class_coverage"], data)


def test_folder_suite_with_classifier_metric_stops_before_training(tmp_path):
    (tmp_path / "imgs").mkdir()
    folder_dataset(tmp_path / "imgs")
    suite = write_suite(
        tmp_path,
        "- name: mean\n  model: plugin_models:MeanModel\n",
        name="fold",
        datasets=f"['folder:{tmp_path / 'imgs'}']",
        n_samples=4,
        metrics="[fd_classifier]",
    )
    res = run_cli("run", str(suite), "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "genbench: error: metric 'fd_classifier': extractor 'classifier' needs a labelled "
        f"dataset and 'folder:{tmp_path / 'imgs'}' has no labels; use inception or pixels features"
    ]
    assert not (tmp_path / "out" / "cache" / "checkpoints").exists()


def test_image_metrics_skip_point_data_and_model_metrics_skip_sample_files():
    ring = load_dataset("ring8")
    assert [p.name for p in plan(["fd_classifier", "class_coverage", "modes"], ring)] == ["modes"]
    ctx = ScoringContext(ring, ring.train.x[:200], torch.device("cpu"))
    assert set(score(ctx, ["bits_per_dim", "throughput", "fd"])) == {"fd_pixels_n200_train"}


def test_a_plugin_extractor_gets_every_feature_metric(tmp_path):
    data = load_dataset("digits")
    encoder = "plugin_extractors:MeanStdEncoder"
    ctx = ScoringContext(data, data.test.x[:300], torch.device("cpu"), features_for=[encoder])
    out = score(ctx, ["fd", "kid", "prdc", "memorization", "vendi"])
    for column in (
        "fd_meanstd_n300_train", "kid_meanstd_n300", "precision_meanstd_k3",
        "coverage_meanstd_k5", "authpct_meanstd", "ct_pixels", "vendi_meanstd_n300",
    ):  # fmt: skip
        assert column in out
    assert out["fd_meanstd_n300_train"] < 5.0  # real test images: close to train


def test_a_plugin_extractor_in_a_suite_run(tmp_path):
    suite = write_suite(
        tmp_path,
        "- name: copier\n- name: pixel-gaussian\n",
        name="enc",
        n_samples=100,
        metrics="[fd, kid, prdc, memorization]",
        extra="features: [plugin_extractors:MeanStdEncoder]\n",
    )
    res = run_cli("run", str(suite), "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    head = next(line for line in board.splitlines() if "| model |" in line)
    for column in ("fd_meanstd_n100_train ↓", "kid_meanstd_n100 ↓", "precision_meanstd_k3 ↑",
                   "authpct_meanstd ↑", "ct_pixels →0"):  # fmt: skip
        assert column in head


def test_entry_point_scan_is_kept_per_sys_path(tmp_path, monkeypatch):
    """A package put on sys.path after the first scan is still found."""
    from bench.plugins import plugin_entry_points

    group = "genbench.test-scan"
    assert plugin_entry_points(group) == ()
    dist = tmp_path / "scan_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: scan-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{group}]\nthing = scan_plugin:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [ep.name for ep in plugin_entry_points(group)] == ["thing"]


def test_plugins_read_each_packages_metadata_once_per_path(monkeypatch):
    """load_plugins runs before each registry lookup (thousands of times in `genbench list
    metrics`); reading a distribution's name parses its metadata, which made `list metrics`
    take 11 s until the outside packages' entry points were kept per sys.path."""
    from bench import plugins

    reads = []

    class Dist:  # a distribution whose name costs a metadata parse
        @property
        def name(self) -> str:
            reads.append(1)
            return "genbench"

    class OwnEntryPoint:  # one of genbench's own: left out, never loaded
        value, dist = "baselines", Dist()

        def load(self):
            pytest.fail("genbench's own entry point was loaded")

    monkeypatch.setattr(plugins, "entry_points", lambda group: (OwnEntryPoint(),))
    monkeypatch.syspath_prepend("/nonexistent-path-for-a-fresh-scan")
    for _ in range(20):
        plugins.load_plugins()
    assert len(reads) == 1


def test_columns_declare_what_they_are():
    """The report and the job read a column's kind and artifacts from its declaration, not
    from its name."""
    assert column_kind("throughput_img_s_b4_cpu") == "speed"
    assert column_kind("throughput_disturbed_b4") == "flag"
    assert column_kind("throughput_rsd_b4") == "info" and column_kind("nonsense") == "info"
    assert rankable("fd_pixels_n5_train") and rankable("modes_captured")
    assert not rankable("throughput_img_s_b4") and not rankable("ct_pixels")
    assert not rankable("kid_pixels_n5_std")
    assert primary_metric(["throughput_img_s_b4", "ct_pixels", "kid_pixels_n5"]) == "kid_pixels_n5"
    assert artifacts_of(["memorization_pixels", "fd"]) == {"nearest_neighbours"}
    assert artifacts_of(["fd", "prdc"]) == frozenset()


def test_a_plugin_speed_column_never_ranks_and_places_in_the_sweep_are_declared(monkeypatch):
    monkeypatch.setattr(METRICS, "_entries", dict(METRICS.entries))  # forget it afterwards
    register_metric(
        "test_speed",
        columns={
            "test_speed_": {"direction": "higher", "order": 2, "kind": "speed"},
            "test_fidelity_": {"direction": "lower", "order": 50, "sweep": 1.05},
        },
    )(lambda ctx: {})
    with pytest.raises(ValueError, match="'test_speed_b4' cannot rank models"):
        check_rank_metric("test_speed_b4")
    board = ["fid_inception_clean_n9", "fd_classifier_n9_train", "test_fidelity_x",
             "intra_fd_worst_classifier_n9", "intra_fd_classifier_n9", "recall_classifier_k3",
             "precision_classifier_k3", "cond_accuracy"]  # fmt: skip
    fd, against, table = sweep_columns(board)
    assert fd == "fd_classifier_n9_train"  # the lowest rank of place 1: fd_ 1, fid_ 1.1
    assert against == ["cond_accuracy", "precision_classifier_k3", "recall_classifier_k3"]
    assert table == [fd, "intra_fd_classifier_n9", *against]
    with pytest.raises(ValueError, match="kind 'fast' of 'x_'"):
        register_metric("test_bad_kind", columns={"x_": {"direction": "lower", "kind": "fast"}})


def test_declarations_read_through_the_disk_cache_equal_the_sources(tmp_path, monkeypatch):
    from bench import registry

    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path))
    scan = registry.scan_file.__wrapped__
    files = [(p, f"m{i}") for i, p in enumerate(sorted(ROOT.glob("bench/**/*.py")))]
    first = {f: scan(*f) for f in files}  # parsed, and the cache written
    assert len(list((tmp_path / "declarations").iterdir())) == len(files)
    monkeypatch.setattr(registry, "_scan_source", lambda *a: pytest.fail("parsed again"))
    assert {f: scan(*f) for f in files} == first
    assert sum(bool(d) for d in first.values()) > 30
    lazy = [a for d in first.values() for x in d for a in (*x.args, *x.kwargs.values())]
    assert registry.LAZY in lazy  # non-literal arguments come back as the sentinel itself


def test_an_edited_file_or_a_bad_cache_file_is_read_from_the_source(tmp_path, monkeypatch):
    from bench import registry

    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    scan = registry.scan_file.__wrapped__
    source = tmp_path / "mod.py"
    source.write_text('@register_metric("one")\ndef f(ctx):\n    """One."""\n')
    assert [d.args for d in scan(source, "mod")] == [("one",)]
    source.write_text('@register_metric("two", x=g)\ndef f(ctx):\n    """Two."""\n')
    os.utime(source, ns=(1, 1))  # a new mtime: another key
    assert [(d.args, d.kwargs) for d in scan(source, "mod")] == [(("two",), {"x": registry.LAZY})]
    (cache_file,) = [p for p in (tmp_path / "cache" / "declarations").iterdir()
                     if p.read_text().count("two")]  # fmt: skip
    flag = tmp_path / "ran"
    for bad in ("((", f"__import__('pathlib').Path({str(flag)!r}).touch()", "(1, 2)"):
        cache_file.write_text(bad)
        assert [d.args for d in scan(source, "mod")] == [("two",)] and not flag.exists()
