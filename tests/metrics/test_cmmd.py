import numpy as np
import pytest
import torch

from bench.errors import UserError
from bench.metrics import cmmd as cmmd_module
from bench.metrics.cmmd import cmmd


def distance_py_mmd(x, y, sigma=10, scale=1000):
    """google-research cmmd/distance.py (commit 4c42994) transcribed from jax.numpy to numpy."""
    x_sqnorms = np.diag(np.matmul(x, x.T))
    y_sqnorms = np.diag(np.matmul(y, y.T))
    gamma = 1 / (2 * sigma**2)
    k_xx = np.mean(
        np.exp(
            -gamma
            * (-2 * np.matmul(x, x.T) + np.expand_dims(x_sqnorms, 1) + np.expand_dims(x_sqnorms, 0))
        )
    )
    k_xy = np.mean(
        np.exp(
            -gamma
            * (-2 * np.matmul(x, y.T) + np.expand_dims(x_sqnorms, 1) + np.expand_dims(y_sqnorms, 0))
        )
    )
    k_yy = np.mean(
        np.exp(
            -gamma
            * (-2 * np.matmul(y, y.T) + np.expand_dims(y_sqnorms, 1) + np.expand_dims(y_sqnorms, 0))
        )
    )
    return scale * (k_xx + k_yy - 2 * k_xy)


def unit_rows(seed, n, d=32, shift=0.0):
    x = np.random.default_rng(seed).standard_normal((n, d)) + shift
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("tile", [1 << 22, 7], ids=["one-tile", "many-tiles"])
def test_equals_distance_py(monkeypatch, tile):
    monkeypatch.setattr(cmmd_module, "_TILE_ELEMENTS", tile)
    x, y = unit_rows(0, 300), unit_rows(1, 300, shift=0.3)
    expected = distance_py_mmd(x, y)
    assert expected > 0.1
    assert cmmd(x, y) == pytest.approx(expected, abs=1e-6)


def test_unequal_sizes_float32_and_torch_inputs():
    x, y = unit_rows(2, 120, d=16), unit_rows(3, 77, d=16, shift=0.5)
    expected = distance_py_mmd(x, y)
    assert cmmd(x.astype(np.float32), torch.from_numpy(y)) == pytest.approx(
        distance_py_mmd(x.astype(np.float32).astype(np.float64), y), abs=1e-6
    )
    assert cmmd(x, y) == pytest.approx(expected, abs=1e-6)


def test_two_points_closed_form():
    u, v = np.array([[3.0, 0.0]] * 2), np.array([[0.0, 4.0]] * 3)
    # MMD^2 of two Dirac masses: k(u,u) + k(v,v) - 2 k(u,v) = 2 - 2 exp(-25 / 200).
    assert cmmd(u, v) == pytest.approx(1000 * (2 - 2 * np.exp(-25 / 200)), rel=1e-12)
    assert cmmd(u, v, sigma=1.0, scale=1.0) == pytest.approx(2 - 2 * np.exp(-12.5), rel=1e-12)


def test_same_set_is_zero():
    x = unit_rows(4, 50)
    assert cmmd(x, x) == 0.0


def test_bad_input_is_user_error():
    with pytest.raises(UserError, match="mismatched feature dimensions"):
        cmmd(unit_rows(0, 10, d=4), unit_rows(1, 10, d=5))
    with pytest.raises(UserError, match="sigma must be positive"):
        cmmd(unit_rows(0, 10), unit_rows(1, 10), sigma=0)
    bad = unit_rows(0, 10)
    bad[3, 1] = np.nan
    with pytest.raises(UserError, match="NaN"):
        cmmd(bad, unit_rows(1, 10))
