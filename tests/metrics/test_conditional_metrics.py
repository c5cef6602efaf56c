"""Class-conditional metrics: intra-class FD against pytorch-fid per class, conditional
accuracy against hand counts, CAS against its real ceiling and chance, and all three through
the scorer with labels asked as a suite asks them (label of sample i = i % K)."""

import warnings

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from threadpoolctl import threadpool_limits

from bench.data import load_dataset
from bench.errors import UserError
from bench.features.classifier import RECIPE, fit_classifier, load_classifier
from bench.metrics import conditional
from bench.metrics.conditional import (
    cas_real_ceiling,
    classification_accuracy_score,
    conditional_accuracy,
    intra_class_fd,
    real_subset,
)
from bench.metrics.fd import frechet_distance
from bench.scoring import ScoringContext, score

CPU = torch.device("cpu")
# Fewer steps than the shipped recipe, to keep each test within seconds on one thread.
SHORT = {**RECIPE, "max_steps": 100}


def pytorch_fid_of(a: np.ndarray, b: np.ndarray) -> float:
    with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
        warnings.simplefilter("ignore", DeprecationWarning)
        return float(
            calculate_frechet_distance(
                a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
            )
        )


def test_intra_fd_matches_pytorch_fid_class_by_class():
    rng = np.random.default_rng(0)
    k, d = 4, 6
    fake_labels, train_labels = rng.permutation(np.arange(200) % k), rng.integers(0, k, 300)
    shift = rng.standard_normal((k, d)) * 2
    fake = rng.standard_normal((200, d)) * 1.3 + shift[fake_labels]
    train = rng.standard_normal((300, d)) + shift[train_labels] + 0.1
    per_class = intra_class_fd(fake, fake_labels, train, train_labels, k)
    expected = [pytorch_fid_of(fake[fake_labels == c], train[train_labels == c]) for c in range(k)]
    np.testing.assert_allclose(per_class, expected, rtol=1e-8)
    assert len(set(np.round(per_class, 6))) == k  # the classes really differ


def test_intra_fd_is_zero_for_each_class_against_itself():
    rng = np.random.default_rng(1)
    feats, labels = rng.standard_normal((90, 5)), np.arange(90) % 3
    np.testing.assert_allclose(intra_class_fd(feats, labels, feats, labels, 3), 0, atol=1e-9)


@pytest.mark.parametrize(
    ("fake_labels", "message"),
    [
        (np.array([0, 0, 1, 1, 2, 0]), "at least 2 samples of every class, class 2 has 1"),
        (np.array([0, 0, 1, 1, 2, 3]), r"must lie in \[0, 3\)"),
        (np.array([0, 0, 1, 1, 2]), "6 integer class indices"),
        (np.array([0.0, 0, 1, 1, 2, 2]), "integer class indices"),
    ],
)
def test_intra_fd_refuses_bad_labels_with_one_line(fake_labels, message):
    feats = np.random.default_rng(2).standard_normal((6, 2))
    train_labels = np.array([0, 1, 2, 0, 1, 2])
    with pytest.raises(UserError, match=message):
        intra_class_fd(feats, fake_labels, feats, train_labels, 3)


def test_conditional_accuracy_by_hand():
    asked = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0, 2])
    overall, per_class = conditional_accuracy(predicted, torch.from_numpy(asked), 4)
    assert overall == pytest.approx(4 / 6)
    assert per_class == pytest.approx([1 / 2, 2 / 3, 1.0, None])


def test_conditional_accuracy_refuses_mismatched_lengths():
    with pytest.raises(UserError, match="3 integer class indices"):
        conditional_accuracy(np.array([0, 1]), np.array([0, 1, 1]), 2)


def test_real_subset_is_seeded_and_repeats_only_beyond_the_split():
    small = real_subset(100, 60)
    assert len(np.unique(small)) == 60 and np.array_equal(small, real_subset(100, 60))
    large = real_subset(100, 250)
    assert len(large) == 250 and large.min() >= 0 and large.max() < 100
    assert len(np.unique(large)) < 250
    assert not np.array_equal(real_subset(100, 60, seed=1), small)


def test_fit_classifier_refuses_labels_that_do_not_match_the_images():
    x = torch.zeros((4, 1, 8, 8), dtype=torch.uint8)
    with pytest.raises(UserError, match="one label each"):
        fit_classifier(x, torch.zeros(3, dtype=torch.int64), 10, CPU)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def cas_runs(digits):
    """CAS with the short recipe on 700 real training images (not the ceiling's subset),
    with their labels and with them shuffled; and the real ceiling at n = 700."""
    idx = torch.from_numpy(real_subset(len(digits.train.x), 700, seed=1))
    x, y = digits.train.x[idx], digits.train.y[idx]
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
    return {
        "real": classification_accuracy_score(x, y, digits, CPU, recipe=SHORT),
        "shuffled": classification_accuracy_score(x, shuffled, digits, CPU, recipe=SHORT),
        "ceiling": cas_real_ceiling(digits, 700, CPU, recipe=SHORT),
    }


def test_cas_is_seeded(digits):
    x, y = digits.train.x[:128], digits.train.y[:128]
    few = {**RECIPE, "max_steps": 20}
    runs = [classification_accuracy_score(x, y, digits, CPU, seed=s, recipe=few) for s in (0, 0, 1)]
    assert runs[0] == runs[1] != runs[2]


def test_cas_on_real_images_is_close_to_the_real_ceiling(cas_runs):
    assert cas_runs["ceiling"] > 0.85
    assert abs(cas_runs["real"] - cas_runs["ceiling"]) < 0.05


def test_cas_with_shuffled_labels_is_near_chance(cas_runs):
    assert cas_runs["shuffled"] < 0.25  # chance: 1/10


def test_cas_real_ceiling_trains_once_per_dataset_n_and_device(cas_runs, digits, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained the ceiling again")

    monkeypatch.setattr(conditional, "fit_classifier", no_training)
    assert cas_real_ceiling(digits, 700, CPU, recipe=SHORT) == cas_runs["ceiling"]
    with pytest.raises(AssertionError, match="again"):
        cas_real_ceiling(digits, 701, CPU, recipe=SHORT)
    with pytest.raises(AssertionError, match="again"):  # a CPU ceiling is not a CUDA one
        cas_real_ceiling(digits, 700, torch.device("cuda"), recipe=SHORT)


def balanced_labels(n: int, k: int) -> torch.Tensor:
    return torch.arange(n) % k


def images_of(data, classes: torch.Tensor, seed: int) -> torch.Tensor:
    """For each entry of `classes`, a random training image of that class."""
    rng = np.random.default_rng(seed)
    y = data.train.y.numpy()
    return data.train.x[[rng.choice(np.flatnonzero(y == c)) for c in classes.tolist()]]


def test_score_a_conditional_copier(digits):
    n, k = 200, digits.num_classes
    asked = balanced_labels(n, k)
    fake = images_of(digits, asked, seed=0)
    ctx = ScoringContext(digits, fake, CPU, fake_labels=asked)
    got = score(ctx, ["intra_fd", "cond_accuracy", "cas"])
    assert set(got) == {
        f"intra_fd_classifier_n{n}_train",
        f"intra_fd_worst_classifier_n{n}_train",
        "cond_accuracy",
        "cond_accuracy_real_ceiling",
        f"cas_n{n}",
        f"cas_n{n}_real_ceiling",
    }
    clf = load_classifier(digits)
    # 20 samples per class in 128-d: singular covariances, where pytorch-fid's sqrtm is
    # inaccurate; the per-class FD itself is checked against pytorch-fid above.
    per_class = [
        frechet_distance(
            clf.features(fake[asked == c]), clf.features(digits.train.x[digits.train.y == c])
        )
        for c in range(k)
    ]
    assert got[f"intra_fd_classifier_n{n}_train"] == pytest.approx(np.mean(per_class), rel=1e-6)
    assert got[f"intra_fd_worst_classifier_n{n}_train"] == pytest.approx(max(per_class), rel=1e-6)
    predicted = clf.predict(fake)
    assert got["cond_accuracy"] == np.mean(predicted == asked.numpy()) > 0.95
    assert got["cond_accuracy_real_ceiling"] == clf.test_accuracy
    assert got[f"cas_n{n}_real_ceiling"] > 0.85
    assert got[f"cas_n{n}"] == pytest.approx(got[f"cas_n{n}_real_ceiling"], abs=0.05)
    table = ctx.artifacts["per_class"]
    assert table["classes"] == list(range(k))
    assert len(table["intra_fd_classifier"]) == len(table["cond_accuracy"]) == k
    assert table["intra_fd_classifier"] == pytest.approx(per_class, rel=1e-6)
    for c in range(k):
        mine = asked.numpy() == c
        assert table["cond_accuracy"][c] == np.mean(predicted[mine] == c)


def test_score_a_label_shuffler_is_near_chance_on_the_conditional_metrics(digits):
    n, k = 200, digits.num_classes
    asked = balanced_labels(n, k)
    # the same classes as asked, in another order: the same class histogram
    shown = asked[torch.randperm(n, generator=torch.Generator().manual_seed(1))]
    fake = images_of(digits, shown, seed=1)
    copier = images_of(digits, asked, seed=1)
    ctx = ScoringContext(digits, fake, CPU, fake_labels=asked)
    got = score(ctx, ["intra_fd", "cond_accuracy", "cas"])
    good = score(ScoringContext(digits, copier, CPU, fake_labels=asked), ["intra_fd"])
    assert got["cond_accuracy"] < 0.25
    assert got[f"cas_n{n}"] < 0.25 < got[f"cas_n{n}_real_ceiling"]
    fd = f"intra_fd_classifier_n{n}_train"
    assert got[fd] > 3 * good[fd]
    # Unconditional quality is the same: the plain FD does not tell them apart.
    plain = [score(ScoringContext(digits, x, CPU), ["fd"]) for x in (fake, copier)]
    key = f"fd_classifier_n{n}_train"
    assert plain[0][key] == pytest.approx(plain[1][key], rel=0.5)


@pytest.mark.parametrize("metric", ["intra_fd", "cond_accuracy", "cas"])
def test_scoring_without_asked_labels_is_refused(digits, metric):
    ctx = ScoringContext(digits, digits.train.x[:50], CPU)
    with pytest.raises(UserError, match="needs the class each sample was asked for"):
        score(ctx, [metric])


def test_scoring_refuses_asked_labels_of_the_wrong_length(digits):
    ctx = ScoringContext(digits, digits.train.x[:50], CPU, fake_labels=torch.arange(49) % 10)
    with pytest.raises(UserError, match="50 integer class indices"):
        score(ctx, ["cond_accuracy"])
