import os
import subprocess
import sys
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
