"""Memorization statistics on Gaussian blobs: copier, noisy copier, held-out data."""

import numpy as np
import pytest
import torch

from bench.errors import UserError
from bench.metrics.memorization import memorization, nearest_training_indices

N, DIM = 400, 16


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centers = 4 * rng.standard_normal((5, DIM))

    def draw(n):
        return (centers[rng.integers(5, size=n)] + rng.standard_normal((n, DIM))).astype(np.float32)

    train, test, held_out = draw(N), draw(N), draw(N)

    def noisy(sigma):
        return train + sigma * rng.standard_normal(train.shape).astype(np.float32)

    fakes = {"copier": train, "noisy": noisy(0.25), "noisier": noisy(0.7), "held_out": held_out}
    return train, test, {name: memorization(train, test, f) for name, f in fakes.items()}


def test_copier_is_flagged(blobs):
    got = blobs[2]["copier"]
    assert got["copy_fraction"] == 1.0
    assert got["authpct"] == 0.0
    assert got["c_t"] < -10
    assert got["nn_ratio"] < 0.01  # the train subset is all of train here (equal sizes)


def test_held_out_samples_are_not_flagged(blobs):
    got = blobs[2]["held_out"]
    assert got["copy_fraction"] < 0.01
    assert abs(got["c_t"]) < 2
    assert got["nn_ratio"] == pytest.approx(1, abs=0.1)
    assert got["authpct"] > 50


def test_noisy_copies_land_in_between(blobs):
    res = blobs[2]
    order = ["copier", "noisy", "noisier", "held_out"]
    # More noise: fewer copies, farther from train, more authentic, C_T closer to 0.
    for key, sign in [("copy_fraction", -1), ("nn_ratio", 1), ("authpct", 1), ("c_t", 1)]:
        values = [sign * res[name][key] for name in order]
        assert values == sorted(values), key
    assert 0.2 < res["noisy"]["copy_fraction"] < 0.95
    assert res["copier"]["c_t"] < res["noisier"]["c_t"] < res["held_out"]["c_t"] - 3
    assert res["copier"]["nn_ratio"] < res["noisy"]["nn_ratio"] < 0.5


def test_ct_uses_pca_above_64_dims_and_is_seeded():
    rng = np.random.default_rng(1)
    train, test = rng.standard_normal((300, 80)), rng.standard_normal((300, 80))
    a = memorization(train, test, train[:150], seed=3)
    b = memorization(torch.from_numpy(train), torch.from_numpy(test), train[:150], seed=3)
    assert a == b
    assert a["c_t"] < -5


def test_nearest_training_indices_finds_the_copied_images(blobs):
    train = blobs[0]
    picked = np.array([5, 17, 300, 42])
    idx = nearest_training_indices(train[picked] + 1e-3, train, 3)
    assert idx.shape == (4, 3)
    assert np.array_equal(idx[:, 0].numpy(), picked)


@pytest.mark.parametrize(
    ("train", "test", "fake", "message"),
    [
        (np.zeros((20, 4)), np.zeros((10, 4)), np.full((10, 4), np.nan), "NaN or infinite"),
        (np.zeros((20, 4)), np.zeros((10, 3)), np.zeros((10, 4)), "features"),
        (np.zeros((20, 4)), np.zeros((10, 4)), np.zeros((10, 4, 1)), "2-D"),
        (np.zeros((1, 4)), np.zeros((10, 4)), np.zeros((10, 4)), "at least"),
    ],
)
def test_bad_input_raises_user_error(train, test, fake, message):
    with pytest.raises(UserError, match=message):
        memorization(train, test, fake)


def test_nearest_training_indices_bad_k():
    with pytest.raises(UserError, match="k=3 neighbours need at least 3"):
        nearest_training_indices(np.zeros((4, 2)), np.zeros((2, 2)), 3)
