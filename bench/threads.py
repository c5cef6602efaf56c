"""CPU threads that do not collapse when the cores are shared.

Why training slowed 11x beside two busy PyTorch processes on 2 cores (issue #16): PyTorch's
OpenMP runtime (GNU libgomp in the PyPI wheels) lets an idle worker thread spin for up to
300,000 iterations waiting for the next parallel region before it sleeps. Alone, that saves
a wake-up per region; beside other busy processes the spinning threads burn the time slices
the working threads need, and every region ends waiting for a thread that is not scheduled.
`OMP_WAIT_POLICY=PASSIVE` (OpenMP standard; libgomp and Intel's libiomp both honour it) makes
idle threads sleep at once. The runtime reads it when it is loaded, so it must be in the
environment before `import torch`; `configure_threads` says whether it was in time.

The thread count is the process's share of the physical cores it may run on (affinity mask
and cgroup quota, which `torch`'s default ignores), or the user's OMP_NUM_THREADS (or
MKL_NUM_THREADS, which torch lets win) unchanged.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

from bench.errors import UserError

# The value genbench itself put in OMP_NUM_THREADS, so a child process (a Ray or SLURM
# worker inherits the environment) can tell it from a value the user chose.
AUTO_MARK = "GENBENCH_AUTO_OMP_NUM_THREADS"
OPENMP_LIBRARIES = ("libgomp", "libiomp", "libomp")


def _allowed() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """Logical CPUs this process may use: its affinity mask, capped by a cgroup v2 quota."""
    cpus = len(_allowed())
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, math.floor(int(quota) / int(period))))


def available_cores(
    allowed: set[int] | None = None, sys_cpu: Path = Path("/sys/devices/system/cpu")
) -> int:
    """Physical cores among the CPUs this process may use (hyper-threads of one core count
    once, as in torch's default), capped by `available_cpus()`."""
    allowed = _allowed() if allowed is None else allowed
    try:
        siblings = {
            (sys_cpu / f"cpu{i}" / "topology" / "thread_siblings_list").read_text().strip()
            for i in allowed
        }
    except OSError:
        siblings = allowed
    return max(1, min(len(siblings), available_cpus()))


def user_threads(environ: MutableMapping[str, str] | None = None) -> int | None:
    """The thread count the user asked for, or None: MKL_NUM_THREADS, else OMP_NUM_THREADS
    (torch's own order of precedence at start-up)."""
    env = os.environ if environ is None else environ
    for name in ("MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        value = env.get(name, "").strip()
        if not value or (name == "OMP_NUM_THREADS" and value == env.get(AUTO_MARK)):
            continue
        first = value.split(",")[0]  # OpenMP allows a list, one count per nesting level
        if not first.isdigit() or int(first) < 1:
            raise UserError(f"{name} must be a positive integer, got {value!r}")
        return int(first)
    return None


def worker_threads(n_workers: int, environ: MutableMapping[str, str] | None = None) -> int:
    """Threads for each of `n_workers` processes running at once on this machine's cores:
    the user's setting (`user_threads`; it is per process), else an equal share, at least 1."""
    if n_workers < 1:
        raise UserError(f"the number of workers must be at least 1, got {n_workers}")
    return user_threads(environ) or max(1, available_cores() // n_workers)


def openmp_loaded(maps: Path = Path("/proc/self/maps")) -> bool:
    """Whether an OpenMP runtime is already loaded here (then it has read its environment)."""
    try:
        text = maps.read_text()
    except OSError:
        return "torch" in sys.modules
    return any(lib in text for lib in OPENMP_LIBRARIES)


def configure_threads(
    share: int | None = None, environ: MutableMapping[str, str] | None = None
) -> dict[str, object]:
    """Set up this process's CPU threads; call it before `import torch` (CLI entry).

    share: how many processes will run at once on these cores (None: this one alone).
    Sets OMP_WAIT_POLICY=PASSIVE unless the user set a policy, and the thread count to
    `worker_threads(share)`, which keeps a user's OMP_NUM_THREADS. Returns what was done:
    threads, threads_from ("user" or "cores"), cores, wait_policy,
    wait_policy_from ("user" or "genbench") and wait_policy_in_effect (False when the
    OpenMP runtime was loaded before the policy was set, so it did not see it)."""
    env = os.environ if environ is None else environ
    loaded = openmp_loaded()
    policy_from = "user" if env.get("OMP_WAIT_POLICY") else "genbench"
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    chosen = user_threads(env)
    threads = worker_threads(1 if share is None else share, env)
    if chosen is None:
        env["OMP_NUM_THREADS"] = env[AUTO_MARK] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return {
        "threads": threads,
        "threads_from": "cores" if chosen is None else "user",
        "cores": available_cores(),
        "wait_policy": env["OMP_WAIT_POLICY"],
        "wait_policy_from": policy_from,
        "wait_policy_in_effect": policy_from == "user" or not loaded,
    }
