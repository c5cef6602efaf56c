"""Dataset registry. Every loader returns an ImageDataset with fixed train/test splits.

Images are uint8 NCHW tensors; point datasets (2-D mixtures) are float32 (n, D) tensors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from bench.errors import UserError


@dataclass(frozen=True)
class Split:
    x: torch.Tensor
    y: torch.Tensor | None = None


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


_CACHE: dict[tuple[str, str], ImageDataset] = {}


def load_dataset(name: str, data_root: str | Path | None = None) -> ImageDataset:
    """Load a dataset by registry name; raises UserError with the fix when it is missing."""
    _import_loaders()
    root = Path(data_root).expanduser() if data_root else None
    key = (name, str(root))
    if key not in _CACHE:
        if name in _LOADERS:
            ds = _LOADERS[name](root)
        elif ":" in name and name.split(":", 1)[0] in _PREFIX_LOADERS:
            prefix, arg = name.split(":", 1)
            ds = _PREFIX_LOADERS[prefix](arg, root)
        else:
            raise UserError(
                f"unknown dataset {name!r}; choose one of: {', '.join(dataset_names())}"
            )
        _CACHE[key] = finalize(ds)
    return _CACHE[key]


def finalize(ds: ImageDataset) -> ImageDataset:
    """Check the split tensors and attach the content hash."""
    for split in (ds.train, ds.test):
        if ds.kind == "images":
            assert split.x.dtype == torch.uint8 and split.x.ndim == 4, (ds.name, split.x.shape)
        else:
            assert split.x.dtype == torch.float32 and split.x.ndim == 2, (ds.name, split.x.shape)
    h = hashlib.sha256()
    for t in (ds.train.x, ds.train.y, ds.test.x, ds.test.y):
        if t is not None:
            h.update(str(tuple(t.shape)).encode())
            h.update(np.ascontiguousarray(t.numpy()).tobytes())
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
    as_split = lambda idx: Split(  # noqa: E731
        torch.from_numpy(np.ascontiguousarray(images[idx])),
        torch.from_numpy(labels[idx].astype(np.int64)),
    )
    return ImageDataset(name, "images", as_split(tr), as_split(te), num_classes)


def _import_loaders() -> None:
    from bench.data import builtin, files, mixtures, stacked  # noqa: F401
