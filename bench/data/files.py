"""Datasets read from files on disk: torchvision-format MNIST, Fashion-MNIST, CIFAR-10,
and image folders. Nothing is downloaded: a missing file is an error that says where to
put it."""

from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path

import numpy as np

from bench.data import (
    ImageDataset,
    Split,
    register_dataset,
    register_dataset_prefix,
    stratified_split,
)
from bench.errors import UserError
from bench.imageio import read_images

FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of unsigned bytes, as MNIST ships."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserError(f"{path} is not an IDX file of unsigned bytes; re-download it")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise UserError(f"{path} is truncated ({body.size} of {int(np.prod(dims))} bytes)")
    return body.reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def idx_dataset(name: str, folder: Path, how_to_get: str) -> ImageDataset:
    splits = {}
    for split, (img_stem, lbl_stem) in IDX_FILES.items():
        img, lbl = _find(folder, img_stem), _find(folder, lbl_stem)
        if img is None or lbl is None:
            missing = img_stem if img is None else lbl_stem
            raise UserError(f"dataset {name!r}: {folder / missing}[.gz] not found; {how_to_get}")
        x = read_idx(img)
        y = read_idx(lbl).astype(np.int64)
        if len(x) != len(y):
            raise UserError(f"dataset {name!r}: {img} and {lbl} hold different counts")
        splits[split] = Split(x[:, None].copy(), y)
    return ImageDataset(name, "images", splits["train"], splits["test"], 10)


def _need_root(name: str, root: Path | None, how_to_get: str) -> Path:
    if root is None:
        raise UserError(f"dataset {name!r} reads files from --data-root DIR; {how_to_get}")
    return root


MNIST_HINT = (
    "put the torchvision MNIST files in DATA_ROOT/MNIST/raw (e.g. run "
    "`python -c \"import torchvision; torchvision.datasets.MNIST('DATA_ROOT', download=True)\"` "
    "on a machine with internet and copy the folder)"
)


@register_dataset("mnist")
def mnist(root: Path | None) -> ImageDataset:
    root = _need_root("mnist", root, MNIST_HINT)
    return idx_dataset("mnist", root / "MNIST" / "raw", MNIST_HINT)


FASHION_HINT = (
    "install the Debian package (`apt-get install dataset-fashion-mnist`) or put the "
    "torchvision FashionMNIST files in DATA_ROOT/FashionMNIST/raw"
)


@register_dataset("fashion-mnist")
def fashion_mnist(root: Path | None) -> ImageDataset:
    if root is not None and (root / "FashionMNIST" / "raw").is_dir():
        return idx_dataset("fashion-mnist", root / "FashionMNIST" / "raw", FASHION_HINT)
    if FASHION_DEBIAN_DIR.is_dir():
        return idx_dataset("fashion-mnist", FASHION_DEBIAN_DIR, FASHION_HINT)
    raise UserError(f"dataset 'fashion-mnist' not found; {FASHION_HINT}")


CIFAR_HINT = (
    "put the python-format batches in DATA_ROOT/cifar-10-batches-py (e.g. run "
    "`python -c \"import torchvision; torchvision.datasets.CIFAR10('DATA_ROOT', download=True)\"` "
    "on a machine with internet and copy the folder)"
)


class _CifarUnpickler(pickle.Unpickler):
    """The CIFAR-10 python batches are pickles by format. This unpickler admits only what
    that format holds (dicts, lists, str/bytes, ints and numpy uint8 arrays); any other
    global, the way a pickle runs code, is refused before it is looked up."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 3, 32, 32) uint8 and labels of one CIFAR-10 python batch, without running
    anything the file holds."""
    try:
        batch = _CifarUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
        if not isinstance(batch, dict):
            raise ValueError("not a dict")
        data = batch.get("data", batch.get(b"data"))
        labels = batch.get("labels", batch.get(b"labels"))
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
            raise ValueError("'data' is not a uint8 matrix")
        if data.shape[1] != 3 * 32 * 32 or not isinstance(labels, list | np.ndarray):
            raise ValueError("'data' rows are not 3x32x32 images or 'labels' is missing")
        y = np.asarray(labels, dtype=np.int64)
        if y.shape != (len(data),):
            raise ValueError("'labels' does not match 'data'")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise UserError(
            f"dataset 'cifar10': {path} is not a CIFAR-10 python batch ({e}); re-download it"
        ) from None
    return data.reshape(-1, 3, 32, 32), y


def _read_cifar_batches(folder: Path, names: list[str]) -> Split:
    xs, ys = [], []
    for n in names:
        path = folder / n
        if not path.is_file():
            raise UserError(f"dataset 'cifar10': {path} not found; {CIFAR_HINT}")
        x, y = read_cifar_batch(path)
        xs.append(x)
        ys.append(y)
    return Split(np.concatenate(xs), np.concatenate(ys))


@register_dataset("cifar10")
def cifar10(root: Path | None) -> ImageDataset:
    root = _need_root("cifar10", root, CIFAR_HINT)
    folder = root / "cifar-10-batches-py"
    train = _read_cifar_batches(folder, [f"data_batch_{i}" for i in range(1, 6)])
    test = _read_cifar_batches(folder, ["test_batch"])
    return ImageDataset("cifar10", "images", train, test, 10)


# round(0.2 * 8) = 2: the smallest folder whose test split has two images, the fewest any
# statistic over it (a mean and a spread, a nearest neighbour other than itself) can use
MIN_FOLDER_IMAGES = 8


@register_dataset_prefix("folder")
def folder(path: str, root: Path | None) -> ImageDataset:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise UserError(f"dataset 'folder:{path}': {p} is not a directory")
    images = read_images(p)
    if len(images) < MIN_FOLDER_IMAGES:
        raise UserError(
            f"dataset 'folder:{path}': {p} holds {len(images)} images; a dataset needs at least "
            f"{MIN_FOLDER_IMAGES} (its fixed 80/20 split keeps at least 2 to test on)"
        )
    dummy = np.zeros(len(images), dtype=np.int64)
    tr, te = stratified_split(images, dummy, 0.2)
    return ImageDataset(
        f"folder:{path}",
        "images",
        Split(images[tr]),
        Split(images[te]),
    )
