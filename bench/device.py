"""Device selection ('auto' picks CUDA when present; asking for what is absent is an error),
and what the machine can tell about itself: native low-precision arithmetic, CPU busyness."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from bench.errors import UserError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA device is available; use cpu")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# CPU feature flags that mean the arithmetic itself runs in the dtype (x86 /proc/cpuinfo
# "flags", Arm "Features"); without one, torch converts to fp32 and back around each op.
NATIVE_CPU_FLAGS = {
    torch.bfloat16: frozenset({"avx512_bf16", "amx_bf16", "bf16"}),
    torch.float16: frozenset({"avx512_fp16", "amx_fp16", "asimdhp"}),
}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo does not exist)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def dtype_is_native(
    device: torch.device, dtype: torch.dtype, flags: frozenset[str] | None = None
) -> bool:
    """Whether `device` computes in `dtype` natively rather than emulating it (CPU: by its
    feature flags, unknown counts as emulated)."""
    if dtype is torch.float32:
        return True
    if device.type == "cuda":
        if dtype is torch.bfloat16:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        return True
    flags = cpu_flags() if flags is None else flags
    return bool(NATIVE_CPU_FLAGS.get(dtype, frozenset()) & flags)


def cpu_seconds(proc_stat: Path = Path("/proc/stat")) -> tuple[float, float] | None:
    """(CPU seconds all cores of the machine have been busy, CPU seconds this process has
    used), both cumulative; None where /proc/stat does not exist. Busy is user, nice,
    system, irq, softirq and steal (a hypervisor's other guests)."""
    own = time.process_time()
    try:
        fields = proc_stat.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    busy = user + nice + system + irq + softirq + steal
    return busy / os.sysconf("SC_CLK_TCK"), own
