"""FID (or FD in classifier or pixel features) between two inputs, and their statistics.

An input is an image folder, an .npz of images, an .npz of statistics (genbench's,
pytorch-fid's or clean-fid's), or a dataset split (`digits`, `digits:test`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.errors import UserError
from bench.npz import is_stats_file
from bench.stats import (
    Protocol,
    Stats,
    check_compatible,
    compute_stats,
    load_stats,
    save_stats,
    stats_path,
)

if TYPE_CHECKING:  # torch loads after statistics files are checked: a bad one is refused first
    import torch

FEATURES = ("inception", "classifier", "pixels")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Source:
    """One input: images (with the dataset they come from, if any) or statistics."""

    label: str
    images: torch.Tensor | None = None
    stats: Stats | None = None
    dataset: str | None = None
    dataset_hash: str | None = None


@dataclass(frozen=True)
class Extractor:
    name: str
    features: Callable[[torch.Tensor], np.ndarray]
    dim: int | None  # None: follows from the image shape (pixels)
    weights_sha256: str | None
    mode: str | None
    info: dict = field(default_factory=dict)  # extra result fields


def load_source(spec: str | os.PathLike, data_root: str | os.PathLike | None = None) -> Source:
    """Resolve a command-line input: an existing path first, else a dataset split."""
    from bench.imageio import load_images

    found = stats_source(spec)
    if found is not None:
        return found
    p = Path(spec).expanduser()
    if p.is_dir() or p.is_file():
        return Source(str(p), images=load_images(p))
    name, split = _dataset_split(str(spec))
    if name is None:
        raise UserError(
            f"{spec} does not exist; give an image folder, an .npz of images or statistics, "
            "or a dataset split such as digits:train"
        )
    from bench.data import load_dataset

    data = load_dataset(name, data_root)
    if data.kind != "images":
        raise UserError(f"dataset {name} holds {data.kind}, not images: it has no FID")
    return Source(
        f"{name}:{split}",
        images=getattr(data, split).x,
        dataset=name,
        dataset_hash=data.content_hash,
    )


def stats_source(spec: str | os.PathLike) -> Source | None:
    """The input as statistics when it is a statistics file (read without torch), else None."""
    p = Path(spec).expanduser()
    return Source(str(p), stats=load_stats(p)) if is_stats_file(p) else None


def build_extractor(
    features: str,
    *,
    mode: str = "clean",
    batch_size: int = 50,
    device: str | torch.device | None = None,
    dataset: str | None = None,
    data_root: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
) -> Extractor:
    """The features function with its name, dimension, weights hash and mode."""
    _check_options(features, mode)
    if features not in FEATURES:  # any other registered extractor (DINOv2, CLIP, plug-ins)
        return _registered(features, device, dataset, data_root, weights)
    if features == "pixels":
        from bench.features.pixels import pixel_features

        return Extractor("pixels", pixel_features, None, None, None)
    from bench.device import resolve_device

    dev = resolve_device("auto" if device is None else str(device))
    if features == "classifier":
        from bench.data import load_dataset
        from bench.features.classifier import load_classifier

        if dataset is None:
            raise UserError("--features classifier needs --dataset NAME (whose classifier)")
        clf = load_classifier(load_dataset(dataset, data_root), dev)
        info = {"dataset": dataset, "classifier_test_accuracy": clf.test_accuracy}
        return Extractor("classifier", clf.features, None, clf.weights_sha256, None, info)
    from bench.features.inception import inception_features, load_inception

    sha = load_inception(dev)[1]

    def run(images: torch.Tensor) -> np.ndarray:
        return inception_features(images, mode=mode, batch_size=batch_size, device=dev)

    return Extractor("inception", run, 2048, sha, mode, {"device": str(dev)})


def _registered(features, device, dataset, data_root, weights) -> Extractor:
    from bench.data import load_dataset
    from bench.device import resolve_device
    from bench.features import resolve_feature_space

    spec = resolve_feature_space(features)
    if spec.needs_labels and dataset is None:
        raise UserError(f"--features {features} needs --dataset NAME (whose labels)")
    if weights is not None and not spec.takes_weights:
        raise UserError(f"extractor {features!r} takes no weights file; drop --weights")
    data = load_dataset(dataset, data_root) if dataset else None
    path = None if weights is None else Path(weights)
    loaded = spec.load(data, resolve_device("auto" if device is None else str(device)), path)
    dim = spec.dim(data) if spec.dim is not None else None
    return Extractor(spec.name, loaded.features, dim, loaded.weights_sha256 or None, None)


def write_source_stats(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    features: str = "inception",
    mode: str = "clean",
    batch_size: int = 50,
    device: str | torch.device | None = None,
    dataset: str | None = None,
    data_root: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
) -> Stats:
    """Compute an image source's statistics and write them to `out` (see bench.stats).

    For classifier features, `dataset` defaults to the dataset the source names."""
    out = stats_path(out)
    src = load_source(source, data_root)
    if src.stats is not None:
        raise UserError(f"{src.label} already holds statistics; use the file as it is")
    ext = build_extractor(
        features,
        mode=mode,
        batch_size=batch_size,
        device=device,
        dataset=dataset or src.dataset,
        data_root=data_root,
        weights=weights,
    )
    made = _image_stats(src, ext)
    save_stats(out, made)
    return made


def fid_between(
    path_a: str | os.PathLike,
    path_b: str | os.PathLike,
    *,
    features: str = "inception",
    mode: str = "clean",
    batch_size: int = 50,
    device: str | torch.device | None = None,
    dataset: str | None = None,
    data_root: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
) -> dict:
    """Fréchet distance between two inputs (see load_source).

    Returns fid, n_a, n_b (None for statistics files without a record), features, mode,
    weights_sha256 and device (None where no features were computed here), plus dataset and
    classifier_test_accuracy for classifier features. Statistics files must not contradict
    the requested protocol nor each other, and are checked before torch loads. FD grows as n
    shrinks: compare results at equal n only."""
    fd_mode = mode if features == "inception" else None
    given = [stats_source(path_a), stats_source(path_b)]
    stats_sides = [s for s in given if s is not None]
    for s in stats_sides:  # before any extractor is loaded (a classifier may need training)
        check_compatible(s.stats, Protocol(0, features, None, fd_mode), s.label)
    if len(stats_sides) == 2:
        first, second = stats_sides
        check_compatible(second.stats, first.stats.protocol, second.label, against=first.label)
    _check_options(features, mode)
    mode = fd_mode
    sides = [s or load_source(p, data_root) for s, p in zip(given, (path_a, path_b), strict=True)]
    with_images = [s for s in sides if s.images is not None]
    if any(len(s.images) < 2 for s in with_images):
        counts = " and ".join(str(len(s.images)) for s in with_images)
        raise UserError(f"FID needs at least 2 images per set, got {counts}")
    if features == "pixels" and len(with_images) == 2:
        a, b = (s.images.shape[1:] for s in with_images)
        if a != b:
            raise UserError(
                f"pixel features need equal image shapes, got {tuple(a)} and {tuple(b)} (C, H, W)"
            )
    ext = None
    if with_images:
        dataset = dataset or next((s.dataset for s in sides if s.dataset), None)
        ext = build_extractor(
            features,
            mode=mode or "clean",
            batch_size=batch_size,
            device=device,
            dataset=dataset,
            data_root=data_root,
            weights=weights,
        )
    dim = ext.dim if ext and ext.dim else 0
    if features == "pixels" and with_images:
        dim = int(np.prod(with_images[0].images.shape[1:]))
    sha = ext.weights_sha256 if ext else None
    for s in stats_sides:  # what only the extractor knows: its dimension and weights
        check_compatible(s.stats, Protocol(dim, weights_sha256=sha), s.label)
    from bench.metrics.fd import frechet_distance_from_stats

    sa, sb = (s.stats if s.stats is not None else _image_stats(s, ext) for s in sides)
    return {
        "fid": frechet_distance_from_stats(sa.mu, sa.sigma, sb.mu, sb.sigma),
        "n_a": sa.protocol.n,
        "n_b": sb.protocol.n,
        "features": features,
        "mode": mode,
        "weights_sha256": sha,
        "device": None,
        **(ext.info if ext else {}),
    }


def _image_stats(source: Source, ext: Extractor) -> Stats:
    return compute_stats(
        source.images,
        extractor=ext.name,
        features=ext.features,
        dim=ext.dim,
        weights_sha256=ext.weights_sha256,
        mode=ext.mode,
        source=source.label,
        source_hash=source.dataset_hash,
    )


def _check_options(features: str, mode: str) -> None:
    from bench.features import resolve_feature_space

    resolve_feature_space(features)  # an unknown name: one line listing the choices
    if features == "inception":
        from bench.features.inception import MODES

        if mode not in MODES:
            raise UserError(f"unknown Inception mode {mode!r}; use one of {MODES}")


def _dataset_split(spec: str) -> tuple[str | None, str]:
    from bench.data import is_known_dataset

    name, _, split = spec.rpartition(":")
    if split in SPLITS and is_known_dataset(name):
        return name, split
    return (spec, "train") if is_known_dataset(spec) else (None, "train")
