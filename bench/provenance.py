"""What a number was made with: package versions, git commit, Python, device."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch


def package_versions() -> dict[str, str]:
    out = {}
    for pkg in ("genbench", "torch", "torchvision", "numpy", "scipy", "mlflow", "pytorch-fid"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


def git_commit(path: Path) -> str:
    try:
        res = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        return res.stdout.strip() if res.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model and the cores this process may use."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model
            )
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores"


def machine_provenance(device: torch.device) -> dict[str, str]:
    """Package versions, commit and device, recorded with every run."""
    tags = {f"version.{k}": v for k, v in package_versions().items()}
    tags.update(
        {
            "git_commit": git_commit(Path(__file__).resolve().parent),
            "python": platform.python_version(),
            "torch_cuda": str(torch.version.cuda),
            "device": str(device),
            "device_name": device_name(device),
            # training results and CPU throughput depend on it (bench.threads)
            "torch_threads": str(torch.get_num_threads()),
            "hostname": platform.node(),
        }
    )
    return tags
