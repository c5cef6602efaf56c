"""The animal-mnist dataset: read from the wheel's files without importing the package or
running anything a pickle holds."""

from __future__ import annotations

import gzip
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bench.data import animal_mnist as am
from bench.data import dataset_arrays
from bench.errors import UserError

# Where a real wheel may be: the folder pip download wrote to (ANIMAL_MNIST_WHEEL_DIR), or
# the installed package (scripts/venv installs it).
REAL_WHEEL_DIR = os.environ.get("ANIMAL_MNIST_WHEEL_DIR", "/tmp/am")


def wheel_with(path: Path, images: bytes, labels: bytes) -> Path:
    with zipfile.ZipFile(path / am.WHEEL, "w") as z:
        z.writestr(f"{am.FOLDER}/{am.IMAGES}", images)
        z.writestr(f"{am.FOLDER}/{am.LABELS}", labels)
    return path


def gz_pickle(obj) -> bytes:
    return gzip.compress(pickle.dumps(obj))


@pytest.fixture
def not_installed(monkeypatch):
    monkeypatch.setattr(am, "_installed_folder", lambda: None)


def test_a_wheel_in_the_data_root_is_read_as_the_package_bundles_it(tmp_path, not_installed):
    x = np.random.default_rng(0).integers(0, 256, (10000, 28, 28), dtype=np.uint8)
    y = np.repeat(np.arange(10), 1000)
    wheel_with(tmp_path, gz_pickle(x), gz_pickle(y))
    images, labels = am.animal_arrays(tmp_path)
    assert images.shape == (10000, 1, 28, 28) and np.array_equal(images[:, 0], x)
    assert labels.dtype == np.int64 and np.array_equal(labels, y)


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):  # a pickle that creates a file when it is loaded
        return (open, (self.marker, "w"))


def test_a_pickle_that_would_run_code_is_refused(tmp_path, not_installed):
    payload = gz_pickle(_Payload(tmp_path / "ran"))
    wheel_with(tmp_path, payload, payload)
    with pytest.raises(UserError, match="is not a pickled array \\(refused global"):
        am.animal_arrays(tmp_path)
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize(
    "images,labels,message",
    [
        (np.zeros((10, 28, 28), np.uint8), np.arange(10), "not 10,000 uint8 28x28"),
        (np.zeros((10000, 28, 28), np.uint8), np.zeros(10000, int), "not 10,000 of classes"),
        ({"not": "an array"}, np.arange(10), "holds no array"),
    ],
)
def test_other_arrays_are_refused(tmp_path, not_installed, images, labels, message):
    wheel_with(tmp_path, gz_pickle(images), gz_pickle(labels))
    with pytest.raises(UserError, match=message):
        am.animal_arrays(tmp_path)


def test_without_the_wheel_the_error_says_what_to_run(tmp_path, not_installed):
    with pytest.raises(UserError) as e:
        am.animal_arrays(tmp_path)
    assert "pip install --no-deps animal-mnist==0.4" in str(e.value)
    assert "\n" not in str(e.value)


def test_the_installed_package_is_found_without_importing_it(tmp_path, monkeypatch):
    site = tmp_path / "site"
    folder = site / "animal_mnist" / "data" / "Animal_MNIST"
    folder.mkdir(parents=True)
    (site / "animal_mnist" / "__init__.py").write_text("raise ImportError('imported')\n")
    x = np.zeros((10000, 28, 28), np.uint8)
    (folder / am.IMAGES).write_bytes(gz_pickle(x))
    (folder / am.LABELS).write_bytes(gz_pickle(np.arange(10000) % 10))
    monkeypatch.syspath_prepend(str(site))
    images, labels = am.animal_arrays(None)
    assert images.shape == (10000, 1, 28, 28) and np.bincount(labels).tolist() == [1000] * 10


@pytest.fixture(scope="module")
def real():
    root = Path(REAL_WHEEL_DIR)
    if not (root / am.WHEEL).is_file() and am._installed_folder() is None:
        pytest.skip(reason=f"no animal-mnist wheel: {am.HOW_TO_GET}")
    return dataset_arrays("animal-mnist", root if (root / am.WHEEL).is_file() else None)


def test_the_real_data_split_hash_and_duplicates(real):
    assert real.content_hash == "2221ab30b86f3aa9"
    assert len(real.train.x) == 8000 and len(real.test.x) == 2000
    assert np.bincount(real.test.y).tolist() == [200] * 10
    both = np.concatenate([real.train.x, real.test.x])
    assert am.duplicates(both) == 284
    assert am.duplicates(real.train.x) == 178 and am.duplicates(real.test.x) == 10
    train = {bytes(r) for r in real.train.x.reshape(8000, -1)}
    assert sum(bytes(r) in train for r in real.test.x.reshape(2000, -1)) == 96
