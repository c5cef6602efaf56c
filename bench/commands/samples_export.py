"""`genbench samples export`: a finished job's cached samples out of a suite's output
folder, as an .npz genbench (and numpy) reads back or as a folder of PNG files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from bench.cache import Cache, atomic_write_bytes
from bench.errors import UserError


def export_samples(
    out_dir: Path, model: str, dest: Path, *, dataset: str | None = None
) -> tuple[int, str]:
    """Write `model`'s samples (its lowest seed's latest finished job) to `dest`: an .npz
    with `images` (and `labels`, the classes asked of a conditional model) when `dest` ends
    in .npz, else a new folder of 000000.png, ... (plus labels.txt, one class a line).
    Returns the number of samples and what was written."""
    from bench.study.sources import study_runs

    if dest.exists() and (dest.is_file() or any(dest.iterdir())):
        raise UserError(f"{dest} already exists; name a new file or an empty folder")
    run = study_runs(out_dir, [model], dataset)[0]
    cached = Cache(out_dir / "cache").load("samples", run.samples_key)
    if cached is None:
        raise UserError(f"model {model!r} has no cached samples in {out_dir}/cache; rerun it")
    images, labels = (
        (cached["images"], cached["labels"]) if isinstance(cached, dict) else (cached, None)
    )
    images = images.cpu().numpy()
    labels = None if labels is None else labels.cpu().numpy().astype(np.int64)
    if dest.suffix == ".npz":
        buffer = io.BytesIO()
        arrays = {"images": images} if labels is None else {"images": images, "labels": labels}
        np.savez_compressed(buffer, **arrays)
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, buffer.getvalue())
        return len(images), str(dest)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise UserError(f"model {model!r} made points, not images; export to a .npz file")
    _write_pngs(images, labels, dest)
    return len(images), f"{dest}/000000.png ... {len(images) - 1:06d}.png"


def _write_pngs(images: np.ndarray, labels: np.ndarray | None, folder: Path) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        hwc = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
        buffer = io.BytesIO()
        Image.fromarray(hwc).save(buffer, format="PNG")
        atomic_write_bytes(folder / f"{i:06d}.png", buffer.getvalue())
    if labels is not None:
        atomic_write_bytes(folder / "labels.txt", "".join(f"{c}\n" for c in labels).encode())
