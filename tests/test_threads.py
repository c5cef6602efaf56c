"""bench.threads: what configure_threads sets is what the OpenMP runtime and torch use,
and which genbench commands train with one thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.errors import UserError
from bench.threads import (
    AUTO_MARK,
    available_cores,
    available_cpus,
    configure_threads,
    default_threads,
)

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", AUTO_MARK)

PROBE = """
import json, sys
from bench.threads import configure_threads
if sys.argv[1] == "late":
    import torch
info = configure_threads(trains=sys.argv[2] == "trains")
import torch
print(json.dumps({**info, "torch_threads": torch.get_num_threads()}))
"""


def probe(when: str, trains: bool, **env_vars: str) -> tuple[dict, str]:
    """Run PROBE in a fresh process whose only thread variables are env_vars; return its
    configure_threads result with torch's thread count, and the OpenMP runtime's settings."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update(PYTHONPATH=str(ROOT), OMP_DISPLAY_ENV="true", **env_vars)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, when, "trains" if trains else "infers"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout), out.stderr


def test_training_processes_use_one_thread_before_torch_loads():
    info, omp = probe("early", trains=True)
    assert info["torch_threads"] == info["threads"] == 1
    assert info["threads_from"] == "genbench"
    if "OMP_NUM_THREADS" in omp:  # GNU libgomp prints what it read at load
        assert "OMP_NUM_THREADS = '1'" in omp


def test_other_processes_use_every_core():
    info, _ = probe("early", trains=False)
    assert info["torch_threads"] == info["threads"] == available_cores()


def test_after_torch_loaded_the_count_still_holds():
    info, _ = probe("late", trains=True)
    assert info["torch_threads"] == info["threads"] == 1


def test_users_settings_are_kept():
    info, omp = probe("early", trains=True, OMP_NUM_THREADS="2", OMP_WAIT_POLICY="ACTIVE")
    assert info["torch_threads"] == info["threads"] == 2 and info["threads_from"] == "user"
    if "OMP_WAIT_POLICY" in omp:
        assert "OMP_WAIT_POLICY = 'ACTIVE'" in omp


def test_default_threads_follow_the_user_then_the_role():
    assert default_threads(True, {}) == 1
    assert default_threads(False, {}) == available_cores()
    assert default_threads(True, {"OMP_NUM_THREADS": "3"}) == 3  # per process, as OpenMP
    assert default_threads(True, {"OMP_NUM_THREADS": "3,1"}) == 3  # nested-levels list
    assert default_threads(True, {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "2"}) == 2  # torch


def test_a_child_process_tells_genbench_own_count_from_the_users():
    import torch

    before = torch.get_num_threads()
    env: dict[str, str] = {}
    try:
        configure_threads(trains=True, environ=env)
    finally:
        torch.set_num_threads(before)
    assert env["OMP_NUM_THREADS"] == "1" and "OMP_WAIT_POLICY" not in env
    assert default_threads(False, env) == available_cores()  # genbench's 1, not the user's


def test_the_cli_gives_run_one_thread_and_eval_every_core(monkeypatch):
    from bench import cli

    seen = []
    monkeypatch.setattr("bench.threads.configure_threads", lambda trains: seen.append(trains))
    monkeypatch.setattr(cli, "app", lambda: None)
    for argv, trains in [
        (["genbench", "run", "s.yaml"], True),
        (["genbench", "fid", "a", "b"], False),
    ]:
        monkeypatch.setattr(sys, "argv", argv)
        cli.main()
        assert seen.pop() is trains


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_bad_thread_counts_are_user_errors(value):
    with pytest.raises(UserError, match="OMP_NUM_THREADS must be a positive integer"):
        default_threads(True, {"OMP_NUM_THREADS": value})
    with pytest.raises(UserError, match="MKL_NUM_THREADS must be a positive integer"):
        default_threads(True, {"MKL_NUM_THREADS": value})


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("max 100000", None), ("100000 100000", 1), ("50000 100000", 1), ("10000000 100000", None)],
)
def test_cgroup_quota_caps_the_cores(tmp_path, cpu_max, expected):
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    affinity = len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path) == (expected or affinity)
    assert available_cpus(tmp_path / "absent") == affinity


def test_hyperthreads_of_one_core_count_once(tmp_path):
    for cpu, siblings in enumerate(["0,2", "1,3", "0,2", "1,3"]):
        topology = tmp_path / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "thread_siblings_list").write_text(siblings + "\n")
    assert available_cores({0, 1, 2, 3}, tmp_path) == min(2, available_cpus())
    assert available_cores({0, 2}, tmp_path) == 1
    assert available_cores({0, 1}, tmp_path / "absent") == min(2, available_cpus())
