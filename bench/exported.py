"""What exported generators (a TorchScript or ONNX file: z, and labels for a class-conditional
one, -> images) share, as torch-fidelity's GenerativeModelModuleWrapper and
GenerativeModelONNX: the latent each sample starts from, the options that say how to read
the file's output (value range, layout), and turning that output into genbench's uint8
NCHW images. The adapters themselves are plug-in files (one per format)."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import UserError

if TYPE_CHECKING:
    import torch

RANGES = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0)}
LAYOUTS = ("NCHW", "NHWC")
PICKLE_OPCODE = 0x80  # a pickle (protocol 2+) starts with PROTO


@dataclass(frozen=True)
class OutputSpec:
    """How to call an exported generator and read what it returns."""

    z_shape: tuple[int, ...]  # one sample's latent
    low: float
    high: float
    layout: str  # of the file's output


def output_spec(what: str, z_dim: int | list[int], output_range: str, layout: str) -> OutputSpec:
    """The options of an exported generator, checked; bad values are one-line UserErrors."""
    dims = [z_dim] if isinstance(z_dim, int) and not isinstance(z_dim, bool) else z_dim
    if (
        not isinstance(dims, list)
        or not dims
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 2**20 for d in dims)
    ):
        raise UserError(
            f"{what}: option z_dim={z_dim!r}; give the latent's size (an int, e.g. 128) or "
            "shape (a list, e.g. [128, 1, 1])"
        )
    if output_range not in RANGES:
        raise UserError(
            f"{what}: option output_range={output_range!r}; choose one of: {', '.join(RANGES)}"
        )
    if layout not in LAYOUTS:
        raise UserError(f"{what}: option layout={layout!r}; choose one of: {', '.join(LAYOUTS)}")
    low, high = RANGES[output_range]
    return OutputSpec(tuple(dims), low, high, layout)


def latents(n: int, spec: OutputSpec, generator: torch.Generator) -> torch.Tensor:
    """Standard normal latents drawn on the CPU from `generator`: the same on every device."""
    import torch

    return torch.randn((n, *spec.z_shape), generator=generator)


def to_images(x: torch.Tensor, spec: OutputSpec, shape: tuple[int, ...], what: str) -> torch.Tensor:
    """A generator's output as uint8 NCHW images of `shape`: the declared layout and range
    read, values outside the range clipped (NaN and inf refused)."""
    import torch

    from bench.samples import require_finite

    x = x.detach().float().cpu()
    if spec.layout == "NHWC" and x.dim() == 4:
        x = x.permute(0, 3, 1, 2)
    if tuple(x.shape[1:]) != tuple(shape):
        raise UserError(
            f"{what} returned images of shape {tuple(x.shape[1:])} ({spec.layout} read); the "
            f"dataset's are {tuple(shape)} (NCHW): check the layout option or the dataset"
        )
    require_finite(x, f"{what}'s images")
    unit = (x.clamp(spec.low, spec.high) - spec.low) / (spec.high - spec.low)
    return (unit * 255).round().to(torch.uint8)


def sample_batches(
    n: int,
    batch_size: int,
    spec: OutputSpec,
    generator: torch.Generator,
    labels: torch.Tensor | None,
    call: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
) -> list[torch.Tensor]:
    """`call(z, labels)` on batches of at most batch_size; each batch's latents are drawn in
    turn, so the samples do not depend on the batch size."""
    z = latents(n, spec, generator)
    return [
        call(z[i : i + batch_size], None if labels is None else labels[i : i + batch_size])
        for i in range(0, n, batch_size)
    ]


def conditional_classes(what: str, declared: int | None, passed: int | None) -> int:
    """An exported generator's number of classes: 0 for a file that takes no labels
    (`declared` 0), else the dataset's (`passed`), which it must have."""
    if declared == 0:
        return 0
    if not passed:
        raise UserError(
            f"{what} takes labels (class-conditional) and the dataset has no class labels; "
            "use a labelled dataset (digits, mnist, cifar10, ...)"
        )
    return passed


def refuse_pickle(path: Path, what: str) -> None:
    """A UserError for a file that Python's pickle would load (torch.save of an nn.Module):
    unpickling runs whatever code the file names."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        scripted = any("/code/" in n for n in names) and any(
            n.endswith("constants.pkl") for n in names
        )
        if scripted:
            return
    else:
        with open(path, "rb") as f:
            if f.read(1) != bytes([PICKLE_OPCODE]):
                return
    raise UserError(pickled_module(path, what))


def pickled_module(path: Path, what: str) -> str:
    return (
        f"{what}: {path} is a pickled nn.Module (torch.save), and loading a pickle can run "
        "any code; export it with torch.jit.script(G).save(PATH) or torch.onnx.export"
    )
