"""Disentanglement, completeness and informativeness (Eastwood & Williams 2018) of an
encoder model's codes, as disentanglement_lib (google-research) computes them
(metrics/dci.py): per factor, scikit-learn's GradientBoostingClassifier (default settings;
random_state 0 here, so the score repeats) predicts the factor from the codes of the
training split; the absolute feature importances form the (codes x factors) matrix R.
Disentanglement = sum_i rho_i (1 - H_k(R_i.)) with rho_i code i's share of R and H_k the
entropy in base k (factors) of its normalized row; completeness = the same over factors
(columns, base d); informativeness = the classifiers' mean accuracy on the test split
(disentanglement_lib reports accuracy under that name, so higher is better). Generators
without an encoder: `dci_generated`, the same matrix on (drawn code -> read factor).
"""

from __future__ import annotations

import numpy as np

from bench.metrics import register_metric
from bench.metrics.mig import encoded_split
from bench.scoring import ScoringContext

EPS = 1e-11  # disentanglement_lib's guard against log(0)


def importance_matrix(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
) -> tuple[np.ndarray, float, float]:
    """(R (d, k), mean train accuracy, mean test accuracy) of one gradient-boosted
    classifier per factor. A factor with one value in the training split (possible only in
    generated samples' read factors) gets no importance and predicts that value."""
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import GradientBoostingClassifier

    r = np.zeros((codes_train.shape[1], factors_train.shape[1]))
    train_acc, test_acc = [], []
    for k in range(factors_train.shape[1]):
        y = factors_train[:, k]
        if len(np.unique(y)) > 1:
            model = GradientBoostingClassifier(random_state=0).fit(codes_train, y)
            r[:, k] = np.abs(model.feature_importances_)
        else:
            model = DummyClassifier(strategy="most_frequent").fit(codes_train, y)
        train_acc.append(np.mean(model.predict(codes_train) == y))
        test_acc.append(np.mean(model.predict(codes_test) == factors_test[:, k]))
    return r, float(np.mean(train_acc)), float(np.mean(test_acc))


def one_minus_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """1 - entropy in `base` of each row of nonnegative weights p (normalized per row)."""
    p = p + EPS
    p = p / p.sum(axis=1, keepdims=True)
    return 1.0 - (-(p * np.log(p)).sum(axis=1) / np.log(base))


def weighted_score(r: np.ndarray) -> float:
    """sum over rows of (row's share of r) * (1 - its entropy in base r.shape[1])."""
    per_row = one_minus_entropy(r, r.shape[1])
    weights = r if r.sum() != 0.0 else np.ones_like(r)
    return float(np.sum(per_row * weights.sum(axis=1) / weights.sum()))


def disentanglement(r: np.ndarray) -> float:
    return weighted_score(r)


def completeness(r: np.ndarray) -> float:
    return weighted_score(r.T)


@register_metric(
    "dci",
    columns={
        "dci_disentanglement_": ("higher", 40.1),
        "dci_completeness_": ("higher", 40.2),
        "dci_informativeness_": ("higher", 40.3),
    },
    needs={"images", "model", "factors"},
)
def score_dci(ctx: ScoringContext) -> dict[str, float]:
    """DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018, as
    disentanglement_lib computes them with gradient-boosted trees) of an encoder model's
    codes against the dataset's known factors; models without `encode` skip it."""
    train, test = encoded_split(ctx, "train"), encoded_split(ctx, "test")
    if train is None:
        return {}
    r, _, test_accuracy = importance_matrix(*train, *test)
    return {
        "dci_disentanglement_train": disentanglement(r),
        "dci_completeness_train": completeness(r),
        "dci_informativeness_test": test_accuracy,
    }
