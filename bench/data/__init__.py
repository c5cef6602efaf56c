"""Dataset registry. Every loader returns an ImageDataset with fixed train/test splits.

Images are uint8 NCHW arrays; point datasets (2-D mixtures) are float32 (n, D) arrays.
Loaders read numpy arrays and import no torch (`dataset_arrays`), so a run refused for its
data or samples files stops before torch loads (two seconds on some CPUs); `load_dataset`
hands the same arrays to jobs as tensors, without a copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from bench.errors import UserError
from bench.plugins import load_plugins
from bench.registry import Registry, declarations, package_modules, summary, target_of

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


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset (or a `prefix:ARG` family) declares; its loader loads on first use."""

    name: str
    summary: str = ""


def _declared(function: str) -> Callable[[], Iterator[tuple[str, str, DatasetSpec]]]:
    def declared() -> Iterator[tuple[str, str, DatasetSpec]]:
        own = package_modules(Path(__file__).parent, __name__)
        for d in declarations(own, (function,)):
            yield d.args[0], d.target, DatasetSpec(d.args[0], summary(d.doc))

    return declared


DATASETS: Registry[DatasetSpec] = Registry("dataset", _declared("register_dataset"))
PREFIXES: Registry[DatasetSpec] = Registry("dataset prefix", _declared("register_dataset_prefix"))


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    def wrap(fn: Loader) -> Loader:
        DATASETS.add(name, target_of(fn), DatasetSpec(name, summary(fn.__doc__)), fn)
        return fn

    return wrap


def register_dataset_prefix(prefix: str) -> Callable[[Callable], Callable]:
    """Register a parametrized family such as `folder:PATH`: fn(ARG, root)."""

    def wrap(fn: Callable[[str, Path | None], ImageDataset]) -> Callable:
        PREFIXES.add(prefix, target_of(fn), DatasetSpec(prefix, summary(fn.__doc__)), fn)
        return fn

    return wrap


def dataset_names() -> list[str]:
    load_plugins()
    return DATASETS.names() + [f"{p}:..." for p in PREFIXES.names()]


def is_known_dataset(name: str) -> bool:
    load_plugins()
    return name in DATASETS or ":" in name and name.split(":", 1)[0] in PREFIXES


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
    root = Path(data_root).expanduser() if data_root else None
    key = (name, str(root))
    if key not in _ARRAYS:
        if name in DATASETS:
            ds = DATASETS.load(name).obj(root)
        elif is_known_dataset(name):
            prefix, arg = name.split(":", 1)
            ds = PREFIXES.load(prefix).obj(arg, root)
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
    if "source" in ds.meta:  # a translation task is its target splits and its source domain
        h.update(ds.meta["source"].content_hash.encode())
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
