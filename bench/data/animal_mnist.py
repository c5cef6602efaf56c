"""Animal-MNIST: 10,000 28x28 grayscale animal silhouettes, 1,000 in each of 10 classes
(bear, bird, cat, cow, dog, elephant, giraffe, horse, sheep, zebra), MIT licence, bundled
in the `animal-mnist` 0.4 wheel on the package index.

The arrays are read from the wheel's files, never by importing the package (it declares
tensorflow, scikit-learn and pandas): from the wheel file itself when it is in the data
root (`pip download --no-deps animal-mnist==0.4 -d DATA_ROOT`), else from the installed
package's folder, found without importing it (`pip install --no-deps animal-mnist==0.4`;
scripts/venv does this). Both files are gzipped pickles of numpy arrays; they are
read with an unpickler that admits only numpy's array reconstruction, so a tampered file
runs nothing. Fixed, stratified 80/20 split (8,000 / 2,000).

The data holds exact duplicates: 284 images appear twice (9,716 distinct; each pair has one
label). After the split, 178 pairs lie within the training split, 10 within the test split
and 96 test images are exact copies of a training image, which memorization metrics score
as copies when a model reproduces them (`duplicates` below counts them).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

from bench.data import ImageDataset, labelled_dataset, register_dataset
from bench.errors import UserError

NAME = "animal-mnist"
WHEEL = "animal_mnist-0.4-py3-none-any.whl"
FOLDER = "animal_mnist/data/Animal_MNIST"
IMAGES, LABELS = "animal_data_version_3.gz", "animal_label_version_3.gz"
CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")
HOW_TO_GET = (
    f"run `pip install --no-deps animal-mnist==0.4`, or put {WHEEL} (from "
    "`pip download --no-deps animal-mnist==0.4`) in --data-root"
)


class _ArrayUnpickler(pickle.Unpickler):
    """Admits numpy arrays alone: any other global, the way a pickle runs code, is refused
    before it is looked up."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return super().find_class(module, name)


def read_array(gz: bytes, where: str) -> np.ndarray:
    """The numpy array a gzipped pickle holds, without running anything it holds."""
    try:
        array = _ArrayUnpickler(io.BytesIO(gzip.decompress(gz))).load()
    except (pickle.UnpicklingError, OSError, EOFError, ValueError, TypeError) as e:
        raise UserError(
            f"dataset {NAME!r}: {where} is not a pickled array ({e}); {HOW_TO_GET}"
        ) from None
    if not isinstance(array, np.ndarray):
        raise UserError(f"dataset {NAME!r}: {where} holds no array; {HOW_TO_GET}")
    return array


def _installed_folder() -> Path | None:
    spec = importlib.util.find_spec("animal_mnist")  # locates the package, imports nothing
    locations = list(spec.submodule_search_locations or []) if spec else []
    folder = Path(locations[0]) / "data" / "Animal_MNIST" if locations else None
    return folder if folder is not None and (folder / IMAGES).is_file() else None


def read_files(root: Path | None) -> tuple[bytes, bytes, str]:
    """(images .gz, labels .gz, where they came from): the wheel in the data root when it is
    there, else the installed package."""
    wheel = root / WHEEL if root is not None else None
    if wheel is not None and wheel.is_file():
        try:
            with zipfile.ZipFile(wheel) as z:
                return z.read(f"{FOLDER}/{IMAGES}"), z.read(f"{FOLDER}/{LABELS}"), str(wheel)
        except (zipfile.BadZipFile, KeyError, OSError) as e:
            raise UserError(
                f"dataset {NAME!r}: {wheel} is not the animal-mnist wheel ({e})"
            ) from None
    folder = _installed_folder()
    if folder is None:
        raise UserError(f"dataset {NAME!r} is not installed: {HOW_TO_GET}")
    return (folder / IMAGES).read_bytes(), (folder / LABELS).read_bytes(), str(folder)


def animal_arrays(root: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Images (10000, 1, 28, 28) uint8 and labels (10000,) int64 in 0..9."""
    images_gz, labels_gz, where = read_files(root)
    x, y = read_array(images_gz, f"{where}: {IMAGES}"), read_array(labels_gz, f"{where}: {LABELS}")
    if x.dtype != np.uint8 or x.shape != (10000, 28, 28):
        raise UserError(f"dataset {NAME!r}: {where} images are not 10,000 uint8 28x28 ones")
    if (
        y.shape != (10000,)
        or not np.issubdtype(y.dtype, np.integer)
        or set(np.unique(y)) != set(range(10))
    ):
        raise UserError(f"dataset {NAME!r}: {where} labels are not 10,000 of classes 0..9")
    return x[:, None], y.astype(np.int64)


def duplicates(images: np.ndarray) -> int:
    """How many images are an exact copy of an earlier one."""
    flat = images.reshape(len(images), -1)
    return len(flat) - len(np.unique(flat, axis=0))


@register_dataset("animal-mnist")
def animal_mnist(root: Path | None = None) -> ImageDataset:
    """28x28 animal silhouettes, 10 classes, 8,000 / 2,000 (the animal-mnist wheel)."""
    x, y = animal_arrays(root)
    return labelled_dataset(NAME, x, y, 0.2, len(CLASSES))
