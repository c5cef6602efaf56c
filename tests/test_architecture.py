"""The layering DESIGN.md asks for, checked on the import statements of the package: bench/
never imports baselines/ (built-in families are found like plug-ins), executors never
import the runner, and only the record module talks to MLflow."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (inside functions too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out |= {f"{node.module}.{alias.name}" for alias in node.names}
    return out


def imports_from(path: Path, package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in imports(path))


def modules_importing(package: str, files) -> list[str]:
    return sorted(str(f.relative_to(ROOT)) for f in files if imports_from(f, package))


def test_imports_are_read_from_every_kind_of_statement(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import a.b\nfrom c import d\ndef f():\n    from e.f import g\n")
    assert imports(probe) == {"a.b", "c", "c.d", "e.f", "e.f.g"}
    assert imports_from(probe, "e") and imports_from(probe, "a")
    assert not imports_from(probe, "ef") and not imports_from(probe, "a.bc")


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [("bench", "baselines"), ("bench/executors", "bench.runner")],
)
def test_no_upward_imports(importer, forbidden):
    files = sorted((ROOT / importer).rglob("*.py"))
    assert files
    assert modules_importing(forbidden, files) == []


def test_only_the_record_module_calls_mlflow():
    files = sorted((ROOT / "bench").rglob("*.py"))
    assert modules_importing("mlflow", files) == ["bench/record.py"]


TEST_FOLDERS_OF_THEIR_OWN = {"benchmarks", "fixtures", "__pycache__"}


def test_tests_mirror_the_packages():
    """tests/ mirrors bench/'s packages (and baselines/): a test folder is named after one,
    and a top-level test named after a module that lives only in a package is in that
    package's test folder (tests/metrics/test_kid.py for bench/metrics/kid.py)."""
    tests = ROOT / "tests"
    packages = {p.parent.name for p in (ROOT / "bench").glob("*/__init__.py")} | {"baselines"}
    folders = {p.name for p in tests.iterdir() if p.is_dir()} - TEST_FOLDERS_OF_THEIR_OWN
    assert folders <= packages, f"test folders named after no package: {folders - packages}"
    top_modules = {p.stem for p in (ROOT / "bench").glob("*.py")}
    misplaced = [
        f"tests/{t.name} -> tests/{p.parent.name}/"
        for t in tests.glob("test_*.py")
        for p in [
            *ROOT.glob(f"bench/*/{t.stem.removeprefix('test_')}.py"),
            *ROOT.glob(f"baselines/{t.stem.removeprefix('test_')}.py"),
        ]
        if t.stem.removeprefix("test_") not in top_modules
    ]
    assert not misplaced, misplaced
