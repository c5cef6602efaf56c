"""`genbench list metrics` shows each suite metric's measured CPU cost (#26): read from
bench/metrics/costs.json, which scripts/measure-metric-costs writes; "-" where unmeasured."""

import json
import subprocess
import sys

from conftest import ROOT, run_cli

from bench.metrics import describe
from bench.metrics.costs import cost_line, costs_header, read_costs

MEASURED = {
    "cpu": "AMD EPYC 7B13, 2 cores",
    "date": "2026-12-06",
    "torch": "2.5.1",
    "threads": 1,
    "repeats": 3,
    "input": "1000 digits training images (seed 0) against digits",
    "seconds_per_1000_images": {"fd_pixels": 0.01234, "fd_inception": 41.26, "cas": None},
}


def test_costs_are_read_and_shown_per_suite_name_with_a_dash_where_unmeasured(tmp_path):
    path = tmp_path / "costs.json"
    path.write_text(json.dumps(MEASURED))
    costs = read_costs(path)
    assert costs.measured_on == "AMD EPYC 7B13, 2 cores, 2026-12-06, torch 2.5.1, 1 thread"
    line = cost_line(["fd_pixels", "fd_inception", "fd_dinov2_vitl14"], costs)
    assert line == (
        "CPU cost per 1,000 images: fd_pixels 0.0123 s, fd_inception 41.3 s, fd_dinov2_vitl14 -"
    )
    assert cost_line(["cas"], costs) == "CPU cost per 1,000 images: cas -"  # null: not run
    assert costs_header(costs).startswith("CPU costs measured on AMD EPYC 7B13")


def test_a_missing_or_broken_costs_file_shows_not_measured(tmp_path):
    assert read_costs(tmp_path / "absent.json") is None
    for broken in ("{", json.dumps({"cpu": "x"}), json.dumps(MEASURED).replace("41.26", "-1")):
        (tmp_path / "c.json").write_text(broken)
        assert read_costs(tmp_path / "c.json") is None
    assert cost_line(["fd_pixels"], None) == "CPU cost per 1,000 images: fd_pixels -"
    assert "not measured (run scripts/measure-metric-costs" in costs_header(None)


def test_list_metrics_shows_the_cost_of_each_suite_name():
    res = run_cli("list", "metrics")
    assert res.returncode == 0, res.stderr
    costs = read_costs()
    assert res.stdout.startswith(costs_header(costs))
    rows = {name: names for name, _, _, names in describe()}
    assert "fd_pixels" in rows["fd"] and "fid_inception" in rows["fd"] and rows["kid"]
    assert rows["hype"] == []  # a study's columns: no suite computes them
    assert cost_line(rows["fd"], costs) in res.stdout
    assert cost_line(rows["prdc"], costs) in res.stdout


def test_the_measuring_script_writes_a_file_list_metrics_reads(tmp_path):
    """A smoke run on 20 images (its figures mean nothing on a busy machine): a measured
    metric gets its own work plus the pass over the images it reads, measured once; one
    that needs a model null."""
    out = tmp_path / "costs.json"
    script = ROOT / "scripts" / "measure-metric-costs"
    env = {"OMP_NUM_THREADS": "1", "PATH": "", "GENBENCH_CACHE": str(tmp_path / "cache")}
    res = subprocess.run(
        [sys.executable, str(script), "--metrics", "fd_pixels,bits_per_dim", "--n", "20",
         "--repeats", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    written = json.loads(out.read_text())
    assert written["threads"] == 1 and written["input"].startswith("20 digits")
    costs = read_costs(out)
    assert costs.seconds["bits_per_dim"] is None
    assert set(written["passes_seconds_per_1000_images"]) == {"pixels"}
    assert costs.seconds["fd_pixels"] >= written["passes_seconds_per_1000_images"]["pixels"] > 0
