import numpy as np
import pytest
import torch
from scipy.special import softmax
from torch_fidelity.metric_isc import isc_features_to_metric

from bench.errors import UserError
from bench.metrics.inception_score import inception_score


def one_hot(labels, num_classes):
    return np.eye(num_classes)[labels]


@pytest.mark.parametrize("num_classes", [2, 10, 1008])
def test_confident_uniform_predictions_score_num_classes(num_classes):
    probs = one_hot(np.arange(num_classes * 10) % num_classes, num_classes)
    mean, std = inception_score(probs, splits=10)  # each split holds every class once
    assert mean == pytest.approx(num_classes, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_identical_predictions_score_one():
    probs = np.tile(softmax(np.random.default_rng(0).standard_normal(10)), (100, 1))
    mean, std = inception_score(probs)
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_confident_logits_score_near_num_classes():
    logits = 50.0 * one_hot(np.arange(400) % 4, 4)
    assert inception_score(logits, splits=4)[0] == pytest.approx(4.0, rel=1e-9)


@pytest.mark.parametrize(("n", "splits"), [(1000, 10), (1003, 7), (50, 1)])
def test_matches_torch_fidelity(n, splits):
    logits = 3.0 * np.random.default_rng(n).standard_normal((n, 20))
    theirs = isc_features_to_metric(torch.from_numpy(logits), splits=splits, shuffle=False)
    expected = (theirs["inception_score_mean"], theirs["inception_score_std"])
    assert inception_score(logits, splits=splits) == pytest.approx(expected, rel=1e-12)
    # Probabilities give the same score as their logits; float32 torch input is accepted.
    probs = softmax(logits, axis=1)
    assert inception_score(probs, splits=splits) == pytest.approx(expected, rel=1e-12)
    as_torch = torch.from_numpy(probs).float()
    assert inception_score(as_torch, splits=splits) == pytest.approx(expected, rel=1e-5)


GOOD = softmax(np.random.default_rng(1).standard_normal((20, 5)), axis=1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: inception_score(np.where(GOOD > 0.5, np.nan, GOOD)), "NaN or inf"),
        (lambda: inception_score(GOOD[:1], splits=1), "at least 2 samples"),
        (lambda: inception_score(GOOD[:, :1]), "at least 2 classes"),
        (lambda: inception_score(GOOD[0]), "must have 2 dimensions"),
        (lambda: inception_score(GOOD, splits=21), "splits"),
        (lambda: inception_score(GOOD, splits=0), "splits"),
    ],
)
def test_bad_input_raises_user_error(call, message):
    with pytest.raises(UserError, match=message):
        call()
