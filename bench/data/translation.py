"""Translation tasks: a source domain A paired with a target domain B, generated offline with
fixed arithmetic (integer or float64 numpy, no randomness), so every machine builds the
same bytes and the same content hash.

A task is an ImageDataset whose splits are the target domain's (B: what FD, KID and the
target's classifier compare translations with) and whose meta holds
  source   the source domain A as an ImageDataset (its own splits and labels)
  target   the target domain B as its own dataset (its name picks the shipped classifier)
  paired   True when source split image i is the input of target split image i
Its content hash covers the source too (bench.data.finalize). The source's test split is in
a fixed random order (TEST_ORDER_SEED), the paired target's with it.

edges2mnist   paired: the Sobel edge map of an mnist5k digit -> the digit
digits2mnist  unpaired: scikit-learn's 8x8 digits upscaled to 28x28 -> mnist5k
mnist2digits  unpaired: the other direction
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.data import ImageDataset, Split, dataset_arrays, finalize, register_dataset

# |Sobel gradient|^2 at or above this is an edge: |G| >= 128, an eighth of a full 0 -> 255
# step's 1020, which outlines the strokes and leaves out MNIST's faint anti-aliasing.
EDGE_THRESHOLD_SQ = 128**2
TEST_ORDER_SEED = 0
DIGIT_BOX = 20  # MNIST digits fill a 20x20 box in the middle of 28x28


def sobel_edges(images: np.ndarray) -> np.ndarray:
    """Binary edge maps (0 or 255, uint8 NCHW) of uint8 NCHW images: the squared magnitude
    of the 3x3 Sobel gradient, in int32 (at most 2 * 1020^2) with the borders zero-padded,
    at or above EDGE_THRESHOLD_SQ. Integer arithmetic only: the same bits on every machine."""
    x = np.pad(images.astype(np.int32), ((0, 0), (0, 0), (1, 1), (1, 1)))
    h, w = images.shape[2:]

    def at(dy: int, dx: int) -> np.ndarray:
        return x[:, :, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    gx = (at(-1, 1) + 2 * at(0, 1) + at(1, 1)) - (at(-1, -1) + 2 * at(0, -1) + at(1, -1))
    gy = (at(1, -1) + 2 * at(1, 0) + at(1, 1)) - (at(-1, -1) + 2 * at(-1, 0) + at(-1, 1))
    return np.where(gx * gx + gy * gy >= EDGE_THRESHOLD_SQ, 255, 0).astype(np.uint8)


def upscale_to_mnist(images: np.ndarray) -> np.ndarray:
    """uint8 NCHW images (any square size) -> 28x28: bilinear (align-corners) resampling to
    the 20x20 box MNIST digits fill, centred with 4 pixels of zero border; float64 then
    rounded half to even, the same bits on every machine."""
    n, c, size, _ = images.shape
    pos = np.linspace(0.0, size - 1.0, DIGIT_BOX)
    lo = np.minimum(np.floor(pos).astype(np.int64), size - 2)
    frac = pos - lo
    x = images.astype(np.float64)
    rows = x[:, :, lo, :] * (1 - frac)[:, None] + x[:, :, lo + 1, :] * frac[:, None]
    box = rows[:, :, :, lo] * (1 - frac) + rows[:, :, :, lo + 1] * frac
    out = np.zeros((n, c, 28, 28), np.uint8)
    pad = (28 - DIGIT_BOX) // 2
    out[:, :, pad : pad + DIGIT_BOX, pad : pad + DIGIT_BOX] = np.rint(box).clip(0, 255)
    return out


def translation_task(
    name: str, source: ImageDataset, target: ImageDataset, paired: bool
) -> ImageDataset:
    """The task's splits are the target's; the source's test split is put in a fixed random
    order (the target's with it when paired), so that the first n of it, which a job
    translates, are a fair draw of the classes (the test splits are sorted by class)."""
    order = np.random.default_rng(TEST_ORDER_SEED).permutation(len(source.test.x))
    source = replace(source, test=_reordered(source.test, order))
    test = _reordered(target.test, order) if paired else target.test
    meta = {"source": finalize(source), "target": target, "paired": paired}
    return ImageDataset(name, "images", target.train, test, target.num_classes, meta)


def _reordered(split: Split, order: np.ndarray) -> Split:
    return Split(split.x[order], None if split.y is None else split.y[order])


def _domain(name: str, base: ImageDataset, x_train: np.ndarray, x_test: np.ndarray):
    return ImageDataset(
        name,
        "images",
        Split(x_train, base.train.y),
        Split(x_test, base.test.y),
        base.num_classes,
    )


def _digits28(root: Path | None) -> ImageDataset:
    digits = dataset_arrays("digits", root)
    train, test = upscale_to_mnist(digits.train.x), upscale_to_mnist(digits.test.x)
    return _domain("digits28", digits, train, test)


@register_dataset("edges2mnist")
def edges2mnist(root: Path | None = None) -> ImageDataset:
    """Paired translation: the Sobel edge map of each mnist5k digit -> the digit."""
    mnist = dataset_arrays("mnist5k", root)
    edges = _domain("edges:mnist5k", mnist, sobel_edges(mnist.train.x), sobel_edges(mnist.test.x))
    return translation_task("edges2mnist", edges, mnist, paired=True)


@register_dataset("digits2mnist")
def digits2mnist(root: Path | None = None) -> ImageDataset:
    """Unpaired translation: scikit-learn digits upscaled to 28x28 -> mnist5k digits."""
    return translation_task(
        "digits2mnist", _digits28(root), dataset_arrays("mnist5k", root), paired=False
    )


@register_dataset("mnist2digits")
def mnist2digits(root: Path | None = None) -> ImageDataset:
    """Unpaired translation: mnist5k digits -> scikit-learn digits upscaled to 28x28."""
    return translation_task(
        "mnist2digits", dataset_arrays("mnist5k", root), finalize(_digits28(root)), paired=False
    )
