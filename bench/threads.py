"""CPU threads: how many each genbench process uses, and why.

A process that trains or samples models (`genbench run`, `genbench throughput`) uses one
intra-op thread unless the user set OMP_NUM_THREADS (or MKL_NUM_THREADS, which torch lets
win); the other commands (`eval`, `fid`, `stats`, ...) use one thread per physical core they
may run on (affinity mask and cgroup quota, which torch's default ignores). Measured on a
2-core Xeon (issue #16), RealNVP training on digits, steps/s alone and beside two busy
PyTorch processes:

    torch default (2 threads, spinning)   48 alone   3.6 shared  13.5x slower
    OMP_WAIT_POLICY=PASSIVE, 2 threads    14 alone   2.0 shared   7.0x slower
    GOMP_SPINCOUNT=100000, 2 threads      47 alone   7.7 shared   6.1x slower
    one thread                            41 alone  15.6 shared   2.6x slower

A team of two threads needs both scheduled at once at the end of every parallel region, so
beside other busy processes it waits for whichever the scheduler took away, whatever the
wait policy; passive waiting costs a futex wake-up per region even alone. The small models
of a suite gain little from a second thread (0.85x alone), and a fixed count has one more
merit: reductions split per thread, so training results depend on the thread count
(RealNVP fd_classifier 16.20 with one thread, 16.45 with two, same seed), and one thread by
default makes them independent of the machine's core count.
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


# Commands that train or sample models; they default to one thread (see the module doc).
TRAINING_COMMANDS = ("run", "throughput")


def default_threads(trains: bool, environ: MutableMapping[str, str] | None = None) -> int:
    """The user's setting (`user_threads`), else 1 for a process that trains or samples,
    else one per available physical core."""
    return user_threads(environ) or (1 if trains else available_cores())


def configure_threads(
    trains: bool, environ: MutableMapping[str, str] | None = None
) -> dict[str, object]:
    """Set this process's CPU threads (`default_threads`); call it before `import torch`.

    Puts the count in OMP_NUM_THREADS when the user set none, so that OpenMP reads it at
    load and child processes (Ray, SLURM, DataLoader workers) inherit it. Returns
    threads, threads_from ("user" or "genbench") and cores."""
    env = os.environ if environ is None else environ
    chosen = user_threads(env)
    threads = default_threads(trains, env)
    if chosen is None:
        env["OMP_NUM_THREADS"] = env[AUTO_MARK] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return {
        "threads": threads,
        "threads_from": "genbench" if chosen is None else "user",
        "cores": available_cores(),
    }
