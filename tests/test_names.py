"""bench.names answers `genbench list` and a suite's checks by name without importing the
modules that register those names (nor torch): its table must equal the registries, its
answers must equal theirs, and the commands that only name things must not import torch."""

import ast
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, TESTS, run_cli, write_suite

from bench import names
from bench.data import dataset_names, register_dataset
from bench.declared import DECLARED
from bench.errors import UserError
from bench.features import extractor_names, resolve_extractor
from bench.metrics import check_rank_metric, describe, direction, metric_names, parse_metric
from bench.models import (
    ENTRY_POINT_GROUP,
    init_signature,
    is_conditional,
    model_names,
    registered_models,
    resolve_model,
)
from bench.plugins import load_plugins

HEAVY = ("torch", "baselines", "mlflow", "sklearn", "pandas", "matplotlib")


def test_declared_table_equals_the_registries():
    """A fresh process, no plug-ins but genbench's own: what they register is DECLARED."""
    env = {k: v for k, v in os.environ.items() if k != "GENBENCH_PLUGINS"}
    code = "from bench.names import snapshot; print(repr(snapshot()))"
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert ast.literal_eval(res.stdout) == DECLARED, (
        "bench/declared.py is out of date: run `python -m bench.names` and ruff format"
    )


def test_declared_baselines_are_conditional_as_their_classes():
    """bench.precheck takes a baseline that names num_classes in its __init__ to be
    class-conditional, as is_conditional says of its class."""
    for name, cls in registered_models().items():
        assert names.model_signature(name) == init_signature(cls)
        assert is_conditional(cls) == ("num_classes" in init_signature(cls).params), name


def test_names_answer_as_the_registries():
    load_plugins()  # the registries hold everything from here on
    listed = names.known_names()
    assert listed["models"] == model_names()
    assert listed["datasets"] == dataset_names()
    assert listed["metrics"] == metric_names()
    assert listed["extractors"] == extractor_names()
    assert names.describe_metrics() == describe()
    assert names.MODEL_GROUP == ENTRY_POINT_GROUP
    for name in metric_names():
        names.check_metric(name)
        assert names.metric_needs(name) == parse_metric(name)[0].needs
    for bad in ("fd_nowhere", "is", "fd_", "hype"):
        with pytest.raises(ValueError) as ours:
            names.check_metric(bad)
        with pytest.raises(ValueError) as theirs:
            parse_metric(bad)
        assert str(ours.value) == str(theirs.value)
    for name in extractor_names():
        assert names.takes_weights(name) == resolve_extractor(name).takes_weights
    view = names.current()
    columns = [c[0] for m in view["metrics"].values() for c in m["columns"]]
    for column in [*columns, "nonsense", "throughput_img_s_b4", "fd_pixels_n50_train_std"]:
        for metric in (column, column + "n50_train", column + "_floor"):
            assert names.direction(metric, view) == direction(metric)
            assert rank_error(names.check_rank_metric, metric) == rank_error(
                check_rank_metric, metric
            )


@pytest.mark.parametrize("features", [[], ["dinov2_vitb14", "pixels"]])
def test_metric_extractors_are_the_feature_spaces_plan_chooses(features):
    """bench.precheck finds the weights files a suite needs from these, without torch."""
    from bench.data import load_dataset
    from bench.scoring import plan

    digits = load_dataset("digits")
    # digits' own extractor, which plan adds when features is empty, needs no weights file
    default = set() if features else {"classifier"}
    for name in metric_names():
        for planned in plan([name], digits, features):
            chosen = set(names.metric_extractors(name, features))
            assert chosen <= set(planned.extractors), name
            assert set(planned.extractors) - chosen <= default, name
    assert names.metric_extractors("cmmd", features) == ("clip_vitl14_336",)


def rank_error(check, metric: str) -> str:
    try:
        check(metric)
    except ValueError as e:
        return str(e)
    return ""


def test_unknown_names_are_refused_with_the_registries_words():
    with pytest.raises(UserError) as ours:
        names.check_model("gpt")
    with pytest.raises(UserError) as theirs:
        resolve_model("gpt")
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(UserError) as ours:
        names.takes_weights("resnet")
    with pytest.raises(UserError) as theirs:
        resolve_extractor("resnet")
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="unknown dataset 'lsun'; choose one of: cifar10,"):
        names.check_dataset("lsun")
    names.check_model("plugin_models:MeanModel")  # module:Class is resolved, as before
    with pytest.raises(UserError, match="has no attribute 'Nope'"):
        names.check_model("plugin_models:Nope")


def test_names_registered_at_run_time_are_known():
    """A registration made after start-up (a suite's `plugins:`) counts at once."""

    @register_dataset("names-test-set")
    def _loader(root):
        raise AssertionError("never loaded by a name check")

    assert names.is_known_dataset("names-test-set")
    assert "names-test-set" in names.known_names()["datasets"]


def probe(*args: str, env: dict | None = None, cwd=None) -> tuple[subprocess.CompletedProcess, set]:
    """`genbench ARGS` in a fresh process; also which of HEAVY it imported."""
    code = textwrap.dedent(f"""\
        import atexit, runpy, sys
        def report():
            with open({str(cwd or ROOT) + "/imported.txt"!r}, "w") as f:
                f.write(" ".join(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))))
        atexit.register(report)
        sys.argv = ["genbench", *sys.argv[1:]]
        runpy.run_module("bench.cli", run_name="__main__")
        """)
    path = os.pathsep.join([str(TESTS), str(ROOT)])
    res = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd or ROOT,
        env={**os.environ, "PYTHONPATH": path, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    written = (cwd or ROOT) / "imported.txt"
    imported = set(written.read_text().split())
    written.unlink()
    return res, imported


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--help"], "Usage"),
        (["run", "--help"], "suite YAML"),
        (["list", "models"], "ddpm"),
        (["list", "metrics"], "kid: kid_* ↓"),
        (["list", "extractors"], "dinov2_vitl14"),
        (["list", "datasets"], "stacked:..."),
    ],
)
def test_listing_and_help_import_no_torch(tmp_path, args, expect):
    res, imported = probe(*args, cwd=tmp_path)
    assert res.returncode == 0 and expect in res.stdout, res.stderr
    assert not imported


BASE = """\
name: bad
datasets: [digits]
budget: {steps: 1}
metrics: [fd_pixels]
models:
  - name: copier
"""


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("copier", "gpt", "unknown model 'gpt'"),
        ("[fd_pixels]", "[is]", "unknown metric 'is'"),
        ("[digits]", "[lsun]", "unknown dataset 'lsun'"),
        ("budget:", "budgets:", "budgets: unknown key"),
        ("[fd_pixels]", "[fd_pixels]\nrank_by: ct_pixels", "'ct_pixels' cannot rank models"),
        ("[fd_pixels]", "[fd_pixels]\nfeatures: [resnet]", "unknown extractor 'resnet'"),
        ("[fd_pixels]", "[fd_pixels]\nweights: {pixels: w.pt}", "'pixels' takes no weights"),
        ("name: bad", "name: '..'", "'..' names the output folder"),
    ],
)
def test_a_suite_rejected_by_name_imports_no_torch(tmp_path, old, new, message):
    (tmp_path / "w.pt").write_bytes(b"")
    (tmp_path / "s.yaml").write_text(BASE.replace(old, new))
    res, imported = probe("run", "s.yaml", "--out", "out", cwd=tmp_path)
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert not imported
    assert not (tmp_path / "out").exists()


def test_report_primary_that_cannot_rank_imports_no_torch(tmp_path):
    res, imported = probe("report", "--out", str(tmp_path), "--primary", "ct_pixels", cwd=tmp_path)
    assert res.returncode == 2 and "'ct_pixels' cannot rank models" in res.stderr
    assert not imported


def test_a_plugin_module_the_table_does_not_cover_is_imported(tmp_path):
    """Another package's `genbench.plugins` entry point: its models are listed and accepted."""
    dist = tmp_path / "site" / "other_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: other-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[genbench.plugins]\nother = plugin_models\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(TESTS), str(ROOT)])}
    listed = run_cli("list", "models", env=env)
    assert listed.returncode == 0 and "test-mean" in listed.stdout.split(), listed.stderr
    assert "ddpm" in listed.stdout.split()
    suite = write_suite(tmp_path, "- name: m\n  model: test-mean\n", metrics="[nope]")
    res = run_cli("run", str(suite), "--out", str(tmp_path / "out"), env=env)
    assert res.returncode == 2 and "unknown metric 'nope'" in res.stderr  # the model passed
    assert "unknown model" not in res.stderr
