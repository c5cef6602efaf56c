"""The class-conditional known-answer references: cond-copier draws training images of the
asked class, label-shuffler training images of a uniformly drawn class whatever was asked."""

import numpy as np
import pytest
import torch
from scipy.stats import chi2

from bench.data import load_dataset
from bench.job import asked_labels
from bench.models import Budget, build_model, is_reference, resolve_model

N = 5000


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def fitted(name: str, data):
    model = build_model(resolve_model(name), data, {})
    model.fit(data, Budget(0), seed=0, progress=lambda step, values: None)
    return model


def draw(model, labels: torch.Tensor, seed: int) -> torch.Tensor:
    return model.sample(len(labels), labels=labels, generator=torch.Generator().manual_seed(seed))


def classes_of(samples: torch.Tensor, data) -> np.ndarray:
    """The class of each sample, looked up from the training images it equals (-1 when it
    equals none, or images of more than one class)."""
    owner: dict[bytes, set[int]] = {}
    for image, label in zip(data.train.x.numpy(), data.train.y.tolist(), strict=True):
        owner.setdefault(image.tobytes(), set()).add(label)
    found = [owner.get(image.tobytes(), set()) for image in samples.numpy()]
    return np.array([next(iter(c)) if len(c) == 1 else -1 for c in found])


def labels_for(n: int, data, seed: int = 1) -> torch.Tensor:
    return asked_labels(
        n, "train", data.num_classes, data.train.y, torch.Generator().manual_seed(seed)
    )


@pytest.mark.parametrize("name", ["cond-copier", "label-shuffler"])
def test_references_declare_themselves(name, digits):
    cls = resolve_model(name)
    model = build_model(cls, digits, {})
    assert is_reference(cls) and model.num_classes == 10


def test_cond_copier_draws_the_asked_class(digits):
    model = fitted("cond-copier", digits)
    labels = labels_for(N, digits)
    samples = draw(model, labels, seed=3)
    assert samples.dtype == torch.uint8 and samples.shape == (N, *digits.shape)
    train, y = digits.train.x, digits.train.y
    for c in range(10):
        of_class = train[y == c].flatten(1)
        asked = samples[labels == c].flatten(1)
        # every sample asked for class c equals some training image of class c
        assert (asked[:, None, :] == of_class[None]).all(-1).any(-1).all()


def test_cond_copier_is_uniform_within_a_class(digits):
    model = fitted("cond-copier", digits)
    class0 = digits.train.x[digits.train.y == 0]
    n = 40 * len(class0)
    samples = draw(model, torch.zeros(n, dtype=torch.int64), seed=4).flatten(1)
    which = (samples[:, None, :] == class0.flatten(1)[None]).all(-1).float().argmax(1)
    counts = np.bincount(which.numpy(), minlength=len(class0))
    # duplicates among the class's images would merge counts; digits has none in class 0
    assert len({bytes(im.numpy().tobytes()) for im in class0}) == len(class0)
    expected = n / len(class0)
    stat = ((counts - expected) ** 2 / expected).sum()
    assert stat < chi2.ppf(0.999, len(class0) - 1), stat


def test_label_shuffler_classes_are_uniform_and_ignore_the_asked_label(digits):
    model = fitted("label-shuffler", digits)
    labels = labels_for(N, digits)
    got = classes_of(draw(model, labels, seed=5), digits)
    known = got >= 0
    assert known.mean() > 0.95  # almost every digits image belongs to one class
    asked, got = labels.numpy()[known], got[known]
    counts = np.bincount(got, minlength=10)
    expected = known.sum() / 10
    assert ((counts - expected) ** 2 / expected).sum() < chi2.ppf(0.999, 9)
    # independence: the asked x produced table against the product of its margins
    table = np.zeros((10, 10))
    np.add.at(table, (asked, got), 1)
    outer = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    assert ((table - outer) ** 2 / outer).sum() < chi2.ppf(0.999, 81)
    accuracy = (asked == got).mean()
    assert abs(accuracy - 0.1) < 4 * np.sqrt(0.1 * 0.9 / len(got)), accuracy


@pytest.mark.parametrize("name", ["cond-copier", "label-shuffler"])
def test_same_seed_same_samples_and_state_round_trip(name, digits):
    model = fitted(name, digits)
    labels = labels_for(300, digits)
    first = draw(model, labels, seed=7)
    assert torch.equal(first, draw(model, labels, seed=7))
    assert not torch.equal(first, draw(model, labels, seed=8))
    fresh = build_model(resolve_model(name), digits, {})
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(draw(fresh, labels, seed=7), first)
