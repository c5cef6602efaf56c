import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True, scope="session")
def isolated_cache(tmp_path_factory):
    """Extractor weights and reference features go to a per-session cache, not ~/.cache."""
    path = tmp_path_factory.mktemp("genbench-cache")
    os.environ["GENBENCH_CACHE"] = str(path)
    return path


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    """Run `python -m bench.cli ...` in a subprocess; the tests folder is importable."""
    full_env = {**os.environ, "PYTHONPATH": str(TESTS), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def write_suite(
    folder: Path,
    models: str,
    *,
    name: str = "tiny",
    datasets: str = "[digits]",
    seeds: str = "[0]",
    n_samples: int = 200,
    steps: int = 3,
    metrics: str = "[fd_pixels]",
    extra: str = "",
) -> Path:
    """A suite file in `folder`; `models` is the YAML list under `models:`, `extra` more
    top-level keys."""
    path = folder / f"{name}.yaml"
    head = textwrap.dedent(f"""\
        name: {name}
        datasets: {datasets}
        seeds: {seeds}
        n_samples: {n_samples}
        budget: {{steps: {steps}}}
        metrics: {metrics}
        """)
    path.write_text(
        head + textwrap.dedent(extra) + "models:\n" + textwrap.indent(textwrap.dedent(models), "  ")
    )
    return path


def job_runs(store, suite: str) -> list:
    """Every job run of a suite in any status (RUNNING, KILLED, ...), straight from MLflow."""
    exp = store.client.get_experiment_by_name(suite).experiment_id
    return store.client.search_runs([exp], "tags.`genbench.kind` = 'job'", max_results=10000)
