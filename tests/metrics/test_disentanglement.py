"""MIG and DCI against a transcription of disentanglement_lib's code, and analytic cases."""

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics
import torch
from sklearn.ensemble import GradientBoostingClassifier

from bench.data import load_dataset
from bench.data.shapes import all_factors
from bench.errors import UserError
from bench.metrics import fits_data
from bench.metrics.dci import completeness, disentanglement, importance_matrix, score_dci
from bench.metrics.mig import mig, score_mig
from bench.scoring import ScoringContext

# ---- transcription of google-research/disentanglement_lib (evaluation/metrics/utils.py,
# mig.py, dci.py), arrays laid out as there: (num_codes, n) and (num_factors, n); only
# GradientBoostingClassifier gets random_state=0, as genbench's does.


def lib_histogram_discretize(target, num_bins):
    discretized = np.zeros_like(target)
    for i in range(target.shape[0]):
        discretized[i, :] = np.digitize(target[i, :], np.histogram(target[i, :], num_bins)[1][:-1])
    return discretized


def lib_discrete_mutual_info(mus, ys):
    m = np.zeros([mus.shape[0], ys.shape[0]])
    for i in range(mus.shape[0]):
        for j in range(ys.shape[0]):
            m[i, j] = sklearn.metrics.mutual_info_score(ys[j, :], mus[i, :])
    return m


def lib_discrete_entropy(ys):
    h = np.zeros(ys.shape[0])
    for j in range(ys.shape[0]):
        h[j] = sklearn.metrics.mutual_info_score(ys[j, :], ys[j, :])
    return h


def lib_mig(mus_train, ys_train, num_bins=20):
    discretized_mus = lib_histogram_discretize(mus_train, num_bins)
    m = lib_discrete_mutual_info(discretized_mus, ys_train)
    entropy = lib_discrete_entropy(ys_train)
    sorted_m = np.sort(m, axis=0)[::-1]
    return np.mean(np.divide(sorted_m[0, :] - sorted_m[1, :], entropy[:]))


def lib_compute_importance_gbt(x_train, y_train, x_test, y_test):
    num_factors = y_train.shape[0]
    num_codes = x_train.shape[0]
    importance_matrix = np.zeros(shape=[num_codes, num_factors], dtype=np.float64)
    train_loss = []
    test_loss = []
    for i in range(num_factors):
        model = GradientBoostingClassifier(random_state=0)
        model.fit(x_train.T, y_train[i, :])
        importance_matrix[:, i] = np.abs(model.feature_importances_)
        train_loss.append(np.mean(model.predict(x_train.T) == y_train[i, :]))
        test_loss.append(np.mean(model.predict(x_test.T) == y_test[i, :]))
    return importance_matrix, np.mean(train_loss), np.mean(test_loss)


def lib_disentanglement(importance_matrix):
    per_code = 1.0 - scipy.stats.entropy(
        importance_matrix.T + 1e-11, base=importance_matrix.shape[1]
    )
    if importance_matrix.sum() == 0.0:
        importance_matrix = np.ones_like(importance_matrix)
    code_importance = importance_matrix.sum(axis=1) / importance_matrix.sum()
    return np.sum(per_code * code_importance)


def lib_completeness(importance_matrix):
    per_factor = 1.0 - scipy.stats.entropy(
        importance_matrix + 1e-11, base=importance_matrix.shape[0]
    )
    if importance_matrix.sum() == 0.0:
        importance_matrix = np.ones_like(importance_matrix)
    factor_importance = importance_matrix.sum(axis=0) / importance_matrix.sum()
    return np.sum(per_factor * factor_importance)


# ---- fixed inputs


def fixed_inputs(n: int, seed: int):
    """Factors on small grids and codes that mix them partly, plus noise."""
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, k, n) for k in (3, 4, 6)], axis=1)
    mixing = np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0.2, 0.0, 1.0], [0.1, 0.1, 0.1]])
    codes = factors @ mixing.T + 0.5 * rng.standard_normal((n, 4))
    return codes, factors


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mig_equals_the_disentanglement_lib_transcription(seed):
    codes, factors = fixed_inputs(600, seed)
    assert mig(codes, factors) == pytest.approx(lib_mig(codes.T, factors.T), abs=1e-6)


def test_dci_equals_the_disentanglement_lib_transcription():
    codes, factors = fixed_inputs(300, 0)
    test_codes, test_factors = fixed_inputs(150, 1)
    r, train_acc, test_acc = importance_matrix(codes, factors, test_codes, test_factors)
    lib_r, lib_train, lib_test = lib_compute_importance_gbt(
        codes.T, factors.T, test_codes.T, test_factors.T
    )
    np.testing.assert_allclose(r, lib_r, atol=1e-6, rtol=0)
    assert (train_acc, test_acc) == pytest.approx((lib_train, lib_test), abs=1e-6)
    assert disentanglement(r) == pytest.approx(lib_disentanglement(lib_r), abs=1e-6)
    assert completeness(r) == pytest.approx(lib_completeness(lib_r), abs=1e-6)


def test_dci_of_a_zero_importance_matrix_matches_the_transcription():
    r = np.zeros((4, 3))
    assert disentanglement(r) == pytest.approx(lib_disentanglement(r), abs=1e-9)
    assert completeness(r) == pytest.approx(lib_completeness(r), abs=1e-9)


# ---- analytic cases on shapes


@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes")


def test_an_oracle_encoder_has_mig_one_and_a_random_one_near_zero(shapes):
    # on the full factor grid the factors are independent: the oracle scores exactly 1
    grid = all_factors()
    assert mig(grid.astype(np.float64), grid) == pytest.approx(1.0, abs=1e-12)
    # on the training split they are independent but for the split's sampling, which the
    # second-largest mutual information (another factor's code) picks up a little of
    factors = shapes.meta["factors_train"]
    assert 0.995 < mig(factors.astype(np.float64), factors) <= 1.0
    noise = np.random.default_rng(0).standard_normal((len(factors), 10))
    assert 0 <= mig(noise, factors) < 0.02


def test_an_entangled_encoder_scores_low_dci_disentanglement(shapes):
    ftr, fte = shapes.meta["factors_train"], shapes.meta["factors_test"]
    r, _, oracle_acc = importance_matrix(ftr.astype(float), ftr, fte.astype(float), fte)
    assert disentanglement(r) > 0.99 and completeness(r) > 0.99 and oracle_acc == 1.0
    # every code a dense mix of all factors: the factors are still readable, but spread
    mixing = np.random.default_rng(0).standard_normal((5, 5))
    r, _, _ = importance_matrix(ftr @ mixing, ftr, fte @ mixing, fte)
    assert disentanglement(r) < 0.5 and completeness(r) < 0.5


class OracleEncoder:
    """Looks each image up in the dataset and returns its true factors."""

    def __init__(self, ds):
        self.table = {}
        for split in ("train", "test"):
            for x, f in zip(getattr(ds, split).x, ds.meta[f"factors_{split}"], strict=True):
                self.table[x.numpy().tobytes()] = f

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor(
            np.stack([self.table[i.numpy().tobytes()] for i in x]), dtype=torch.float32
        )


def test_scores_read_the_models_encode_and_skip_models_without_one(shapes):
    ctx = ScoringContext(
        shapes, shapes.train.x[:10], torch.device("cpu"), model=OracleEncoder(shapes)
    )
    assert score_mig(ctx) == {"mig_bins20_all": pytest.approx(1.0, abs=1e-12)}
    dci = score_dci(ctx)
    assert dci["dci_informativeness_test"] == 1.0 and dci["dci_disentanglement_train"] > 0.99
    no_encoder = ScoringContext(shapes, shapes.train.x[:10], torch.device("cpu"), model=object())
    assert score_mig(no_encoder) == {} and score_dci(no_encoder) == {}


def test_factor_metrics_refuse_a_dataset_without_factors():
    with pytest.raises(UserError, match="needs a dataset with known generating factors"):
        fits_data("mig", {"images", "model", "factors"}, load_dataset("digits"))
