"""Sample sets: validation of what a model returned, and sample files on disk (with the
classes the samples were asked for, when an .npz holds them as `labels`). Files are read
and checked without torch (`read_samples`, `sample_labels`, `check_samples_file`), so a run
refused for one stops before torch loads."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.data import ImageDataset
from bench.errors import UserError
from bench.imageio import IMAGE_SUFFIXES, MAX_IMAGES, NPZ_KEYS, images_header, read_images
from bench.npz import NpyHeader, has_array, read_header, read_rows
from bench.translation import is_translation, source

if TYPE_CHECKING:
    import torch

LABELS_KEY = "labels"
# On a translation task: the row of the source's test split each translation was made from
SOURCE_INDICES_KEY = "source_indices"


def check_samples(x, data: ImageDataset, n: int | None = None) -> torch.Tensor:
    """Validate samples against the dataset (shape, finiteness, range) and quantize float
    images in [0, 1] to uint8; point samples come back as float32."""
    import torch

    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise UserError(f"samples must be a torch.Tensor, got {type(x).__name__}")
    x = x.detach().cpu()
    want = (len(x) if n is None else n, *data.shape)
    if tuple(x.shape) != want:
        raise UserError(f"samples have shape {tuple(x.shape)}, expected {want}")
    if data.kind == "points":
        x = x.float()
        require_finite(x)
        return x
    if x.dtype == torch.uint8:
        return x
    if not x.is_floating_point():
        raise UserError(f"image samples must be uint8 or float in [0, 1], got {x.dtype}")
    require_finite(x)
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise UserError(f"float samples must lie in [0, 1], got range [{lo:.3g}, {hi:.3g}]")
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def require_finite(x: torch.Tensor, what: str = "samples") -> None:
    """Refuse float samples (or what they are drawn from) holding NaN or inf, before they are
    quantized: a cast to uint8 turns NaN into 0, black pixels that would be scored as the
    model's. Families that quantize their own samples call it first."""
    import torch

    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise UserError(non_finite(what, bad, x.numel()))


def non_finite(what: str, bad: int, total: int) -> str:
    return (
        f"{what} contain NaN or inf ({bad} of {total} values); the model diverged or an "
        "option is out of range for float32"
    )


def load_samples_file(path: Path, data: ImageDataset, n: int | None = None) -> torch.Tensor:
    """read_samples as a tensor."""
    import torch

    return check_samples(torch.from_numpy(read_samples(path, data, n)), data, n)


def read_samples(path: Path, data: ImageDataset, n: int | None = None) -> np.ndarray:
    """Images (uint8) from an .npz or image folder; points (float32, finite) from an .npz of
    (n, D) numbers; refused unless of the dataset's shape.

    n: exactly the first n samples (a file with fewer is refused); without it, all of them.
    An .npz holds at most MAX_IMAGES; only the rows returned are decompressed."""
    if data.kind == "images":
        x = read_images(path, n, data.shape)
        want = (len(x) if n is None else n, *data.shape)
        if x.shape != want:
            raise UserError(f"samples have shape {x.shape}, expected {want}")
        return x
    header = points_header(path, data, n)
    x = read_rows(header, header.shape[0] if n is None else n).astype(np.float32)
    if not np.isfinite(x).all():
        raise UserError(f"{header.what} contains NaN or inf")
    return x


def load_sample_labels(path: Path, data: ImageDataset, n: int | None = None) -> torch.Tensor | None:
    """sample_labels as a tensor."""
    import torch

    labels = sample_labels(path, data, n)
    return None if labels is None else torch.from_numpy(labels)


def sample_labels(path: Path, data: ImageDataset, n: int | None = None) -> np.ndarray | None:
    """The classes the samples of an .npz were asked for (its `labels` array) as int64, the
    first n; None for a folder, a file without labels or a dataset without classes. Refused
    unless a 1-D integer array with one label per sample, each in [0, num_classes)."""
    p = Path(path)
    if p.is_dir() or not data.num_classes or not has_array(p, LABELS_KEY):
        return None
    header = read_header(p, (LABELS_KEY,))
    count = count_samples(p)
    if header.dtype.kind not in "iu" or len(header.shape) != 1:
        raise UserError(
            f"{header.what} holds {header.dtype} of shape {header.shape}; labels are a 1-D "
            "integer array, one class per sample: np.savez(F, images=x, labels=y.astype(int))"
        )
    if header.shape[0] != count:
        raise UserError(
            f"{header.what} holds {header.shape[0]} labels for {count} samples; "
            "give one label per sample"
        )
    labels = read_rows(header, count).astype(np.int64)
    outside = (labels < 0) | (labels >= data.num_classes)
    if outside.any():
        raise UserError(
            f"{header.what} holds label {int(labels[outside][0])}; dataset {data.name!r} has "
            f"classes 0..{data.num_classes - 1}"
        )
    return labels[:n]


def source_indices(path: Path, data: ImageDataset, n: int | None = None) -> np.ndarray | None:
    """The source test image each translation of an .npz was made from (its
    `source_indices` array) as int64, the first n; None for a folder or a file without them
    (translations of source test images 0 .. n-1, in order). Refused unless the dataset is a
    translation task and the array is 1-D, integer, one index per image, each a row of the
    source's test split, no row twice: a source translated twice would weigh twice in the
    paired means and label_kept, where a job translates each source once."""
    p = Path(path)
    if p.is_dir() or not has_array(p, SOURCE_INDICES_KEY):
        return None
    header = read_header(p, (SOURCE_INDICES_KEY,))
    if not is_translation(data):
        raise UserError(
            f"{header.what}: dataset {data.name!r} is not a translation task, so there are no "
            "source images to index; drop the array or score the file on a translation task"
        )
    count = count_samples(p)
    if header.dtype.kind not in "iu" or len(header.shape) != 1:
        raise UserError(
            f"{header.what} holds {header.dtype} of shape {header.shape}; source indices are a "
            "1-D integer array, one source test row per translation: "
            "np.savez(F, images=x, source_indices=rows.astype(int))"
        )
    if header.shape[0] != count:
        raise UserError(
            f"{header.what} holds {header.shape[0]} source indices for {count} translations; "
            "give one index per translation"
        )
    rows = read_rows(header, count).astype(np.int64)
    have = len(source(data).test.x)
    outside = (rows < 0) | (rows >= have)
    if outside.any():
        raise UserError(
            f"{header.what} holds index {int(rows[outside][0])}; the source test split of "
            f"{data.name!r} has rows 0..{have - 1}"
        )
    values, counts = np.unique(rows, return_counts=True)
    if (counts > 1).any():
        raise UserError(
            f"{header.what} holds index {int(values[counts > 1][0])} "
            f"{int(counts[counts > 1][0])} times; translate each source image once"
        )
    return rows[:n]


def count_samples(path: Path) -> int:
    """How many samples a file holds, from the .npz header or the folder's image names alone
    (the array load_samples_file would read: 'images', else 'arr_0', else the first)."""
    p = Path(path)
    if p.is_dir():
        return sum(1 for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
    if p.suffix.lower() != ".npz":
        raise UserError(f"{p}: expected an .npz file or an image folder")
    return read_header(p, NPZ_KEYS).shape[0]


def check_samples_file(path: Path, data: ImageDataset, n: int | None = None) -> None:
    """Refuse a samples file that cannot give n samples (or any, without n) of the dataset's
    shape and type.

    An .npz of uint8 images is checked from its header alone; anything else (folders, points,
    other dtypes, whose error names the values found) is read, n samples at most."""
    p = Path(path)
    if data.kind == "images" and p.is_file() and p.suffix.lower() == ".npz":
        if images_header(p, n, data.shape).dtype == np.uint8:
            return
    read_samples(p, data, n)


def points_header(path: Path, data: ImageDataset, n: int | None = None) -> NpyHeader:
    """The header of an .npz of points ('images', else 'arr_0', else its first array),
    refused unless it declares (N, D) numbers with the dataset's D, 1 <= N <= MAX_IMAGES and
    N >= n when given."""
    header = read_header(path, NPZ_KEYS)
    dims, what = header.shape, header.what
    if header.dtype.kind not in "iuf" or dims[1:] != data.shape:
        raise UserError(
            f"{what} holds {header.dtype} of shape {dims}; expected float points of shape "
            f"{(dims[0], *data.shape)}"
        )
    if dims[0] == 0:
        raise UserError(f"{what} holds no points")
    if n is not None and dims[0] < n:
        raise UserError(f"{what} holds {dims[0]} points; {n} are needed")
    if dims[0] > MAX_IMAGES:
        raise UserError(f"{what} holds {dims[0]} points; an .npz may hold at most {MAX_IMAGES}")
    return header
