"""The `shapes` dataset: every factor combination once, drawn the same bytes everywhere."""

import hashlib

import numpy as np

from bench.data import dataset_arrays
from bench.data.shapes import FACTOR_NAMES, FACTOR_SIZES, draw

CONTENT_HASH = "8d6c81d3de7f15d3"  # images, labels and split; changes only on purpose
FACTORS_SHA256 = "d294702057db03da7e9b7304a737c5306ac9e0f1006b82bf1f74b82e158ba5c8"


def factors_digest(ds) -> str:
    h = hashlib.sha256()
    for split in ("train", "test"):
        h.update(np.ascontiguousarray(ds.meta[f"factors_{split}"], dtype=np.int64).tobytes())
    return h.hexdigest()


def test_shapes_bytes_and_factors_are_pinned():
    ds = dataset_arrays("shapes")
    assert ds.content_hash == CONTENT_HASH
    assert factors_digest(ds) == FACTORS_SHA256


def test_every_factor_combination_is_drawn_once_and_labelled_by_its_shape():
    ds = dataset_arrays("shapes")
    assert ds.shape == (1, 28, 28) and ds.num_classes == 3
    assert ds.meta["factor_names"] == FACTOR_NAMES == ("shape", "scale", "orientation", "x", "y")
    factors = np.concatenate([ds.meta["factors_train"], ds.meta["factors_test"]])
    assert len(factors) == np.prod(FACTOR_SIZES) == 1944
    assert len({tuple(f) for f in factors}) == len(factors)
    assert np.array_equal(ds.train.y, ds.meta["factors_train"][:, 0])
    assert np.array_equal(ds.test.y, ds.meta["factors_test"][:, 0])
    # each image is its factors' drawing, and no two combinations look the same
    for x, f in zip(ds.test.x, ds.meta["factors_test"], strict=True):
        assert np.array_equal(x[0], draw(tuple(f)))
    images = np.concatenate([ds.train.x, ds.test.x])
    assert len({x.tobytes() for x in images}) == len(images)


def test_an_unrotated_square_covers_exactly_its_pixels():
    # square, scale 4, 0 degrees, centre (9, 9): the pixels 5..12 inclusive, fully
    img = draw((0, 0, 0, 0, 0))
    expected = np.zeros((28, 28), np.uint8)
    expected[5:13, 5:13] = 255
    assert np.array_equal(img, expected)


def test_an_ellipse_is_antialiased_by_its_sub_pixel_count():
    img = draw((1, 2, 0, 3, 3))  # ellipse, scale 6, centre (15, 15): 12 wide, 6 high
    values = set(np.unique(img).tolist())
    assert values <= {(k * 255 + 8) // 16 for k in range(17)}
    assert 0 < len(values - {0, 255})  # edge pixels are partly covered
    cols = np.flatnonzero(img.max(0))
    rows = np.flatnonzero(img.max(1))
    assert (cols.min(), cols.max()) == (9, 20) and (rows.min(), rows.max()) == (12, 17)
