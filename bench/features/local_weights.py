"""Weights that cannot ship with genbench (DINOv2, CLIP): a local file (found by
bench.features.weights_files) read without running anything stored in it, and checked against
the network's names and shapes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bench.errors import UserError


def read_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    """The tensors by name of a torch.save'd state dict, read weights-only and memory-mapped
    (nothing is copied until a tensor is used)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # torch raises many types for a file that is not a checkpoint
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise UserError(f"cannot read {path} as {what} weights: {reason}") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise UserError(f"{path} is not a {what} state dict (a mapping of names to tensors)")
    return state


def check_state_dict(
    state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path, what: str
) -> None:
    """A UserError when `state` lacks, adds or reshapes any of `expected`'s tensors."""
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise UserError(
            f"{path} does not hold {what} weights: {len(missing)} tensors missing "
            f"({', '.join(missing[:3])}), {len(extra)} unexpected ({', '.join(extra[:3])})"
        )
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise UserError(
                f"{path} does not hold {what} weights: {k} has shape {tuple(state[k].shape)}, "
                f"expected {tuple(v.shape)}"
            )


def batched_features(
    images: torch.Tensor,
    batch_size: int,
    dim: int,
    model: torch.nn.Module,
    embed: Callable[[torch.Tensor, torch.device], torch.Tensor],
) -> np.ndarray:
    """float32 (n, dim) rows of `embed(uint8 batch, the model's device)`, batch by batch."""
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    device = next(model.parameters()).device
    out = np.empty((len(images), dim), dtype=np.float32)
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            batch = images[i : i + batch_size]
            out[i : i + len(batch)] = embed(batch, device).float().cpu().numpy()
    return out
