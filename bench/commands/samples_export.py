"""`genbench samples export`: a finished job's cached samples out of a suite's output
folder, as an .npz genbench (and numpy) reads back or as a folder of PNG files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from bench.cache import Cache, atomic_write_bytes
from bench.errors import UserError
from bench.samples import LABELS_KEY, SOURCE_INDICES_KEY


def export_samples(
    out_dir: Path, model: str, dest: Path, *, dataset: str | None = None
) -> tuple[int, str]:
    """Write `model`'s samples (its lowest seed's latest finished job) to `dest`: an .npz
    with `images` (and `labels`, the classes asked of a conditional model; `source_indices`,
    the source test row of each translation on a translation task) when `dest` ends in
    .npz, else a new folder of 000000.png, ... (plus labels.txt, one class a line, and
    source_indices.txt, one row a line). Returns the number of samples and what was
    written."""
    from bench.study.sources import study_runs

    if dest.exists() and (dest.is_file() or any(dest.iterdir())):
        raise UserError(f"{dest} already exists; name a new file or an empty folder")
    run = study_runs(out_dir, [model], dataset)[0]
    cached = Cache(out_dir / "cache").load("samples", run.samples_key)
    if cached is None:
        raise UserError(f"model {model!r} has no cached samples in {out_dir}/cache; rerun it")
    if not isinstance(cached, dict):
        cached = {"images": cached}
    images = cached["images"].cpu().numpy()
    arrays = {"images": images}
    if cached.get(LABELS_KEY) is not None:
        arrays[LABELS_KEY] = cached[LABELS_KEY].cpu().numpy().astype(np.int64)
    if _translates(run.dataset):  # a job translates rows 0 .. n-1
        rows = cached.get(SOURCE_INDICES_KEY)
        rows = np.arange(len(images)) if rows is None else rows.numpy()
        arrays[SOURCE_INDICES_KEY] = rows.astype(np.int64)
    if dest.suffix == ".npz":
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, buffer.getvalue())
        return len(images), str(dest)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise UserError(f"model {model!r} made points, not images; export to a .npz file")
    _write_pngs(images, arrays, dest)
    return len(images), f"{dest}/000000.png ... {len(images) - 1:06d}.png"


def _write_pngs(images: np.ndarray, arrays: dict[str, np.ndarray], folder: Path) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        hwc = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
        buffer = io.BytesIO()
        Image.fromarray(hwc).save(buffer, format="PNG")
        atomic_write_bytes(folder / f"{i:06d}.png", buffer.getvalue())
    for key in (LABELS_KEY, SOURCE_INDICES_KEY):
        if key in arrays:
            text = "".join(f"{v}\n" for v in arrays[key])
            atomic_write_bytes(folder / f"{key}.txt", text.encode())


def _translates(dataset: str) -> bool:
    """Whether the dataset is a translation task. Every translation task loads without a
    data root (they are generated offline), so one that asks for its files is not one."""
    from bench.data import dataset_arrays
    from bench.translation import is_translation

    try:
        return is_translation(dataset_arrays(dataset))
    except UserError:
        return False
