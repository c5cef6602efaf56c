"""The README's plug-in example, taken from README.md between its markers and run as its
suite says: the documented contract cannot drift from what the harness does."""

import math
import re
import sys

from conftest import ROOT

from bench.job import RunOptions
from bench.report.render import write_report
from bench.runner import Runner
from bench.suite import load_suite


def readme_block(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(
        rf"<!-- {name}:start -->\n```\w+\n(.*?)```\n<!-- {name}:end -->", text, re.DOTALL
    )
    assert found, f"README.md has no {name} block between its markers"
    return found.group(1)


def test_the_readme_plugin_example_runs_as_documented(tmp_path, monkeypatch):
    (tmp_path / "my_model.py").write_text(readme_block("plugin-example"))
    (tmp_path / "my_suite.yaml").write_text(readme_block("plugin-suite"))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        runner = Runner(load_suite(tmp_path / "my_suite.yaml"), RunOptions(tmp_path / "out"))
        results = runner.run()
        write_report(runner.store, tmp_path / "out", runner.suite.name)
    finally:
        sys.modules.pop("my_model", None)
    assert [r.status for r in results] == ["FINISHED"] * 2, [r.error for r in results]
    records = {r.model: r for r in runner.store.records("my-suite")}
    warm, cold = records["gaussian"], records["gaussian-cold"]
    for r in (warm, cold):
        assert (r.budget_spent_steps, r.steps_from, r.nfe) == (100, "returned", "1")
        # trained, it beats the uniform distribution over 8-bit values (8 bits per dimension)
        assert 0 < r.metrics["bits_per_dim_test"] < 8
        assert math.isfinite(r.metrics["fd_pixels_n200_train"])
    assert warm.fit_key == cold.fit_key  # temperature is a sampling option: one fit
    assert warm.samples_key != cold.samples_key
    assert (warm.sample_options, cold.sample_options) == (
        '{"temperature": 1.0}',
        '{"temperature": 0.7}',
    )
    assert warm.model_source_sha256 not in ("", "unknown")
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert re.search(r"\| gaussian \| 1 \| 100 \|", md), md
