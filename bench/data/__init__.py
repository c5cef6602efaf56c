"""Dataset registry. Every loader returns an ImageDataset with fixed train/test splits.

Images are uint8 NCHW arrays; point datasets (2-D mixtures) are float32 (n, D) arrays.
Loaders read numpy arrays and import no torch (`dataset_arrays`), so a run refused for its
data or samples files stops before torch loads (two seconds on some CPUs); `load_dataset`
hands the same arrays to jobs as tensors, without a copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from bench.errors import UserError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Split:
    x: torch.Tensor | np.ndarray  # arrays from dataset_arrays, tensors from load_dataset
    y: torch.Tensor | np.ndarray | None = None


@dataclass(frozen=True)
class ImageDataset:
    name: str
    kind: Literal["images", "points"]
    train: Split
    test: Split
    num_classes: int | None = None
    meta: dict = field(default_factory=dict)  # e.g. mixture centers and sigma
    content_hash: str = ""

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])


Loader = Callable[[Path | None], ImageDataset]
_LOADERS: dict[str, Loader] = {}
_PREFIX_LOADERS: dict[str, Callable[[str, Path | None], ImageDataset]] = {}


def register_dataset(name: str):
    def wrap(fn: Loader) -> Loader:
        if name in _LOADERS:
            raise ValueError(f"dataset {name!r} is registered twice")
        _LOADERS[name] = fn
        return fn

    return wrap


def register_dataset_prefix(prefix: str):
    """Register a parametrized family such as `folder:PATH`."""

    def wrap(fn):
        if prefix in _PREFIX_LOADERS:
            raise ValueError(f"dataset prefix {prefix!r} is registered twice")
        _PREFIX_LOADERS[prefix] = fn
        return fn

    return wrap


def dataset_names() -> list[str]:
    _import_loaders()
    return sorted(_LOADERS) + [f"{p}:..." for p in sorted(_PREFIX_LOADERS)]


def is_known_dataset(name: str) -> bool:
    _import_loaders()
    return name in _LOADERS or name.split(":", 1)[0] in _PREFIX_LOADERS and ":" in name


_ARRAYS: dict[tuple[str, str], ImageDataset] = {}
_TENSORS: dict[tuple[str, str], ImageDataset] = {}


def load_dataset(name: str, data_root: str | Path | None = None) -> ImageDataset:
    """A dataset by registry name, its splits as tensors; raises UserError with the fix when
    it is missing."""
    key = (name, str(data_root))
    if key not in _TENSORS:
        _TENSORS[key] = as_tensors(dataset_arrays(name, data_root))
    return _TENSORS[key]


def as_tensors(ds: ImageDataset) -> ImageDataset:
    import torch

    def split(s: Split) -> Split:
        return Split(torch.from_numpy(s.x), None if s.y is None else torch.from_numpy(s.y))

    meta = {k: as_tensors(v) if isinstance(v, ImageDataset) else v for k, v in ds.meta.items()}
    return replace(ds, train=split(ds.train), test=split(ds.test), meta=meta)


def dataset_arrays(name: str, data_root: str | Path | None = None) -> ImageDataset:
    """A dataset by registry name, its splits as numpy arrays, without importing torch."""
    _import_loaders()
    root = Path(data_root).expanduser() if data_root else None
    key = (name, str(root))
    if key not in _ARRAYS:
        if name in _LOADERS:
            ds = _LOADERS[name](root)
        elif ":" in name and name.split(":", 1)[0] in _PREFIX_LOADERS:
            prefix, arg = name.split(":", 1)
            ds = _PREFIX_LOADERS[prefix](arg, root)
        else:
            raise UserError(
                f"unknown dataset {name!r}; choose one of: {', '.join(dataset_names())}"
            )
        _ARRAYS[key] = finalize(ds)
    return _ARRAYS[key]


def finalize(ds: ImageDataset) -> ImageDataset:
    """Check the split arrays and attach the content hash."""
    for split in (ds.train, ds.test):
        if ds.kind == "images":
            assert split.x.dtype == np.uint8 and split.x.ndim == 4, (ds.name, split.x.shape)
        else:
            assert split.x.dtype == np.float32 and split.x.ndim == 2, (ds.name, split.x.shape)
        assert split.y is None or split.y.dtype == np.int64, (ds.name, split.y.dtype)
    h = hashlib.sha256()
    for a in (ds.train.x, ds.train.y, ds.test.x, ds.test.y):
        if a is not None:
            h.update(str(tuple(a.shape)).encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return ImageDataset(**{**ds.__dict__, "content_hash": h.hexdigest()[:16]})


def stratified_split(
    x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Fixed, seeded train/test index split that keeps class proportions."""
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(len(idx) * test_fraction))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(test_idx))


def labelled_dataset(
    name: str, images: np.ndarray, labels: np.ndarray, test_fraction: float, num_classes: int
) -> ImageDataset:
    tr, te = stratified_split(images, labels, test_fraction)
    as_split = lambda idx: Split(images[idx], labels[idx].astype(np.int64))  # noqa: E731
    return ImageDataset(name, "images", as_split(tr), as_split(te), num_classes)


def _import_loaders() -> None:
    from bench.data import builtin, files, mixtures, stacked  # noqa: F401
