"""bench.threads: what configure_threads sets is what the OpenMP runtime and torch use.

The OpenMP runtime reports the settings it read at load time when OMP_DISPLAY_ENV=verbose:
GOMP_SPINCOUNT '0' is libgomp's passive waiting (300000 is its spinning default)."""

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
    worker_threads,
)

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
from bench.threads import configure_threads
if sys.argv[1] == "late":
    import torch
info = configure_threads() if sys.argv[1] != "none" else {}
import torch
print(json.dumps({**info, "torch_threads": torch.get_num_threads()}))
"""


def probe(when: str, **env_vars: str) -> tuple[dict, str]:
    """Run PROBE in a fresh process whose only thread variables are env_vars; return its
    configure_threads result with torch's thread count, and the OpenMP runtime's settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "OMP_NUM_THREADS",
            "MKL_NUM_THREADS",
            "OMP_WAIT_POLICY",
            "GOMP_SPINCOUNT",
            AUTO_MARK,
        )
    }
    env.update(PYTHONPATH=str(ROOT), OMP_DISPLAY_ENV="verbose", **env_vars)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, when],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    if "GOMP_SPINCOUNT" not in out.stderr:
        pytest.skip(reason="torch is not built with GNU libgomp (OMP_DISPLAY_ENV shows spinning)")
    return json.loads(out.stdout), out.stderr


def test_before_torch_idle_threads_sleep_and_use_all_cores():
    info, omp = probe("early")
    assert "GOMP_SPINCOUNT = '0'" in omp and "OMP_WAIT_POLICY = 'PASSIVE'" in omp
    assert info["torch_threads"] == info["threads"] == available_cores()
    assert info["threads_from"] == "cores" and info["wait_policy_in_effect"] is True


def test_without_it_the_runtime_spins():
    """The control: the probe can tell spinning from passive waiting."""
    _, omp = probe("none")
    assert "GOMP_SPINCOUNT = '0'" not in omp


def test_users_settings_are_kept():
    info, omp = probe("early", OMP_NUM_THREADS="1", OMP_WAIT_POLICY="ACTIVE")
    assert info["torch_threads"] == info["threads"] == 1
    assert info["threads_from"] == "user" and info["wait_policy_from"] == "user"
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in omp and "GOMP_SPINCOUNT = '0'" not in omp


def test_after_torch_it_says_the_policy_came_too_late():
    info, omp = probe("late")
    assert info["wait_policy_in_effect"] is False and "GOMP_SPINCOUNT = '0'" not in omp
    assert info["torch_threads"] == info["threads"]


def test_workers_share_the_cores_unless_the_user_chose():
    cpus = available_cores()
    assert worker_threads(1, {}) == cpus
    assert worker_threads(2 * cpus, {}) == 1  # never zero
    assert worker_threads(2, {}) == max(1, cpus // 2)
    assert worker_threads(4, {"OMP_NUM_THREADS": "3"}) == 3  # per process, as OpenMP means it
    assert worker_threads(4, {"OMP_NUM_THREADS": "3,1"}) == 3  # nested-levels list
    assert worker_threads(4, {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "2"}) == 2  # as torch


def test_a_worker_divides_what_the_parent_chose_not_what_the_user_chose():
    import torch

    before = torch.get_num_threads()
    env: dict[str, str] = {}
    try:
        parent = configure_threads(environ=env)
    finally:
        torch.set_num_threads(before)  # no user setting: genbench fills it in
    assert env["OMP_NUM_THREADS"] == str(parent["threads"]) and env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert worker_threads(2 * available_cores(), env) == 1


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_bad_thread_counts_are_user_errors(value):
    with pytest.raises(UserError, match="OMP_NUM_THREADS must be a positive integer"):
        worker_threads(1, {"OMP_NUM_THREADS": value})
    with pytest.raises(UserError, match="MKL_NUM_THREADS must be a positive integer"):
        worker_threads(1, {"MKL_NUM_THREADS": value})


def test_worker_count_must_be_positive():
    with pytest.raises(UserError, match="at least 1"):
        worker_threads(0, {})


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
