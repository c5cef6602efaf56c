"""Declarations are data: genbench's own metrics, extractors, datasets and models are read
from their registering calls in the source (bench.registry), so listing names and checking a
suite import neither those modules nor torch; once the modules run, what they register is
exactly what was declared."""

import importlib
import os
import pkgutil
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, TESTS, run_cli, write_suite

import baselines
import bench
from bench.data import DATASETS, PREFIXES, is_known_dataset, register_dataset
from bench.errors import UserError
from bench.executors import EXECUTORS
from bench.features import EXTRACTORS, resolve_extractor
from bench.metrics import (
    ALIASES,
    METRICS,
    metric_extractors,
    metric_names,
    metric_spec,
    parse_metric,
    register_metric,
)
from bench.models import MODELS, check_model, describe_models, is_conditional, resolve_model
from bench.models import PREFIXES as MODEL_PREFIXES
from bench.registry import LAZY, Registry, declarations, package_modules, scan_file

REGISTRIES = (METRICS, ALIASES, EXTRACTORS, DATASETS, PREFIXES, MODELS, MODEL_PREFIXES, EXECUTORS)
HEAVY = ("torch", "baselines", "mlflow", "sklearn", "pandas", "matplotlib")


def import_every_module() -> None:
    for package in (bench, baselines):
        for found in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(found.name)


def test_what_the_modules_register_is_what_their_source_declares():
    """Every registration of genbench's own modules (anywhere under bench/ or baselines/)
    fills in a declaration with the same metadata, and every declaration is registered by
    its module: the two cannot drift."""
    import_every_module()
    for registry in REGISTRIES:
        for name, entry in registry.entries.items():
            if not entry.target.startswith(("bench.", "baselines.")):
                continue  # a test's plug-in
            where = f"{registry.kind} {name!r} ({entry.target})"
            assert entry.declared is not None, f"{where} is registered outside its kind's folder"
            assert entry.obj is not None, f"{where} is declared and never registered"
            assert entry.declared == entry.meta, where
    assert {"fd", "hype", "modes"} <= set(METRICS.names())
    assert {"dinov2_vitg14", "pixels"} <= set(EXTRACTORS.names())
    assert {"digits", "ring8"} <= set(DATASETS.names()) and "stacked" in PREFIXES
    assert {"ddpm", "copier", "cddpm"} <= set(MODELS.names())
    assert {"torchscript", "onnx"} <= set(MODEL_PREFIXES.names())
    assert EXECUTORS.names() == ["local", "ray", "slurm"]


def test_declared_models_say_what_their_classes_say():
    """The checks before torch loads take a baseline whose __init__ names num_classes to be
    class-conditional, as is_conditional says of its class; references and sampling options
    are read the same way."""
    for name in MODELS.names():
        spec, cls = MODELS.meta(name), resolve_model(name)
        assert spec.conditional == is_conditional(cls), name
        assert spec.reference == (getattr(cls, "reference", False) is True), name
        assert spec.sample_options == tuple(getattr(cls, "SAMPLE_OPTIONS", ())), name


def test_the_scanner_reads_literal_registrations_and_inherited_class_facts(tmp_path):
    (tmp_path / "fams.py").write_text(
        textwrap.dedent('''\
        from elsewhere import Base

        @register_model("a")
        class A:
            """A first. More."""
            reference = True
            SAMPLE_OPTIONS = ("steps",)
            def __init__(self, shape, *, width=8, **kwargs): ...

        @register_model("b")
        class B(A):
            pass

        @register_model("c")
        class C(Base):
            pass

        register_alias("fid_x", "fd", "x")

        def not_at_module_level():
            register_alias("hidden", "fd", "y")
        ''')
    )
    found = {
        d.args[0]: d
        for d in declarations(
            package_modules(tmp_path, "pkg"), ["register_model", "register_alias"]
        )
    }
    assert set(found) == {"a", "b", "c", "fid_x"}
    a, b, c = found["a"].cls, found["b"].cls, found["c"].cls
    assert a.params == {"shape": False, "width": True} and a.var_keyword
    assert a.attrs == {"reference": True, "SAMPLE_OPTIONS": ("steps",)}
    assert (b.params, b.attrs) == (a.params, a.attrs)  # inherited from A in the same module
    assert c.params is None  # a base from elsewhere: its __init__ is not known
    assert found["a"].target == "pkg.fams:A" and found["fid_x"].target == "pkg.fams"
    assert found["a"].doc.startswith("A first.")


def test_a_registration_that_is_not_literal_is_refused(tmp_path):
    (tmp_path / "m.py").write_text(
        'COLS = {"x_": "lower"}\n\n@register_metric("x", columns=COLS)\ndef x(ctx): ...\n'
    )
    [d] = scan_file(tmp_path / "m.py", "m")
    assert d.kwargs["columns"] is LAZY
    with pytest.raises(
        ValueError,
        match="declare columns, needs, per_extractor, also, artifacts and reliable as literals",
    ):
        metric_spec(*d.args, **d.kwargs)


def test_a_declared_entry_is_filled_in_once_and_other_names_twice_are_errors():
    registry = Registry("thing", lambda: [("t", "mod:T", "meta")])
    registry.add("t", "mod:T", "meta", obj=1)  # the module running its declaration
    assert registry.load("t").obj == 1
    with pytest.raises(ValueError, match="thing 't' is registered twice"):
        registry.add("t", "mod:T", "meta", obj=2)
    with pytest.raises(ValueError, match="thing 'u' is registered twice"):
        other = Registry("thing", lambda: [("u", "mod:U", "meta")])
        other.add("u", "elsewhere:U", "meta", obj=3)
    with pytest.raises(ValueError, match="thing 'v' is declared twice"):
        _ = Registry("thing", lambda: [("v", "a:V", 0), ("v", "b:V", 0)]).entries


def test_registering_a_builtin_name_again_is_an_error():
    with pytest.raises(ValueError, match="metric 'fd' is registered twice"):
        register_metric("fd", columns={"fd_": "lower"})(lambda ctx, e: {})
    with pytest.raises(ValueError, match="dataset 'digits' is registered twice"):
        register_dataset("digits")(lambda root: None)


@pytest.mark.parametrize("features", [[], ["dinov2_vitb14", "pixels"]])
def test_metric_extractors_are_the_feature_spaces_plan_chooses(features):
    """bench.plan finds the weights files a suite needs from these, without torch."""
    from bench.data import load_dataset
    from bench.scoring import plan

    # shapes has labels and known factors, so every metric but translation's plans on it
    shapes, edges = load_dataset("shapes"), load_dataset("edges2mnist")
    # its own extractor, which plan adds when features is empty, needs no weights file
    default = set() if features else {"classifier"}
    for name in metric_names():
        data = edges if "translation" in parse_metric(name)[0].needs else shapes
        for planned in plan([name], data, features):
            chosen = set(metric_extractors(name, features))
            assert chosen <= set(planned.extractors), name
            assert set(planned.extractors) - chosen <= default, name
    assert metric_extractors("cmmd", features) == ("clip_vitl14_336",)


def test_unknown_names_are_refused_with_the_choices():
    with pytest.raises(UserError, match="unknown model 'gpt'; choose one of: acgan, cdcgan,"):
        check_model("gpt")
    with pytest.raises(UserError, match="unknown extractor 'resnet'; choose one of: classifier,"):
        resolve_extractor("resnet")
    with pytest.raises(ValueError, match="unknown metric 'hype'; choose one of: bits_per_dim,"):
        parse_metric("hype")  # a human study's columns, not a suite metric
    check_model("plugin_models:MeanModel")  # module:Class is resolved, as before
    with pytest.raises(UserError, match="has no attribute 'Nope'"):
        check_model("plugin_models:Nope")


def test_names_registered_at_run_time_are_known():
    """A registration made after start-up (a suite's `plugins:`) counts at once."""

    @register_dataset("names-test-set")
    def _loader(root):
        raise AssertionError("never loaded by a name check")

    assert is_known_dataset("names-test-set")
    assert DATASETS.entries["names-test-set"].declared is None


def test_list_models_describes_and_marks_each_model():
    rows = dict(describe_models())
    assert rows["ddpm"] == "Noise-prediction DDPM with a small UNet (MLP for point datasets)."
    assert rows["cddpm"].startswith("[class-conditional] Class-conditional DDPM")
    assert rows["copier"].startswith("[reference] Samples training examples")
    assert rows["cond-copier"].startswith("[class-conditional] [reference] ")


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
        (["list", "models"], "[class-conditional] Class-conditional DDPM"),
        (["list", "metrics"], "kid: kid_* ↓"),
        (["list", "metrics"], "Human eye perceptual evaluation"),
        (["list", "extractors"], "dinov2_vitl14"),
        (["list", "datasets"], "stacked:..."),
        (["list", "executors"], "slurm: Each job a SLURM job"),
    ],
)
def test_listing_and_help_import_no_torch(tmp_path, args, expect):
    res, imported = probe(*args, cwd=tmp_path)
    assert res.returncode == 0 and expect in res.stdout, res.stderr
    assert not imported


@pytest.mark.parametrize(
    "args, defaults",
    [
        (
            ["run", "--help"],
            ["reports/SUITE", "physical cores", "sqlite store in OUT/mlruns", "start one"],
        ),
        (["study", "--help"], ["the runs'", "the learned models"]),
    ],
)
def test_help_shows_the_defaults_genbench_computes(args, defaults):
    """Rich markup took an option's "[default: ...]" for a tag and dropped it."""
    res, _ = probe(*args, env={"COLUMNS": "250"})
    text = " ".join(res.stdout.split())
    assert res.returncode == 0, res.stderr
    for default in defaults:
        assert f"[default: {default}]" in text


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
        ("name: copier", "name: copier\n    options: {nope: 1}", "unexpected keyword argument"),
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


def test_another_packages_plugin_module_is_imported(tmp_path):
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
