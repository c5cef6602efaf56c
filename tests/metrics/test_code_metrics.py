"""code_accuracy and code_mi_lb: a categorical code matched to classes (Hungarian)."""

import math

import numpy as np
import pytest
import torch

from bench.data import load_dataset
from bench.metrics.codes import (
    code_accuracy,
    code_mi_lower_bound,
    match_codes,
    score_code_accuracy,
    traversal_rows,
)
from bench.scoring import ScoringContext


def test_matching_maximizes_the_matched_samples_not_each_codes_majority():
    # code 0 is mostly class 1, code 1 all class 1: greedy majority would give both class 1
    codes = np.array([0, 0, 0, 1, 1, 1, 1])
    classes = np.array([1, 1, 0, 1, 1, 1, 1])
    match = match_codes(codes, classes, 2, 3)
    assert match.tolist() == [0, 1]
    assert code_accuracy(codes, classes, match) == pytest.approx(5 / 7)


def test_the_mi_bound_is_log_k_for_a_certain_classifier_and_lower_otherwise():
    codes = np.repeat(np.arange(4), 5)
    match = np.array([2, 0, 3, 1])
    certain = np.full((20, 4), -np.inf)
    certain[np.arange(20), match[codes]] = 0.0
    assert code_mi_lower_bound(codes, certain, match) == pytest.approx(math.log(4))
    uniform = np.full((20, 4), math.log(1 / 4))
    assert code_mi_lower_bound(codes, uniform, match) == pytest.approx(0.0, abs=1e-12)


class ImagesByCode:
    """A 'generator' whose code value k draws test images of class perm[k]."""

    categorical_codes = 10

    def __init__(self, data, perm):
        self.data, self.perm = data, perm

    def sample_with_codes(self, n, *, categorical, continuous=None, generator, batch_size):
        pools = [torch.nonzero(self.data.test.y == c).flatten() for c in range(10)]
        picks = [pools[self.perm[int(k)]][i % 30] for i, k in enumerate(categorical)]
        return self.data.test.x[torch.stack(picks)]


def test_a_code_that_names_the_classes_under_a_permutation_scores_near_one():
    digits = load_dataset("digits")
    perm = [3, 7, 0, 9, 1, 4, 8, 2, 6, 5]
    model = ImagesByCode(digits, perm)
    ctx = ScoringContext(digits, digits.test.x[:200], torch.device("cpu"), model=model)
    got = score_code_accuracy(ctx)
    assert set(got) == {
        "code_accuracy_n200",
        "code_mi_lb_n200",
        "traversal_rows_one_class_s8",
        "traversal_row_classes_s8",
    }
    assert got["code_accuracy_n200"] >= 0.95
    assert 0.8 * math.log(10) < got["code_mi_lb_n200"] <= math.log(10)
    # its traversal rows each show one test image of the code's class
    assert got["traversal_rows_one_class_s8"] == got["traversal_row_classes_s8"] == 10


class MorphsAlongTheSweep(ImagesByCode):
    """Code value k gives class k while the first continuous code is below `edge`, class
    (k + 1) % 10 above it; code values 8 and 9 both give class 9 below it."""

    continuous_codes, continuous_range = 1, (-1.0, 1.0)

    def __init__(self, data, edge):
        super().__init__(data, [0, 1, 2, 3, 4, 5, 6, 7, 9, 9])
        self.edge = edge

    def sample_with_codes(self, n, *, categorical, continuous=None, generator, batch_size):
        if continuous is not None:
            above = continuous[:, 0] > self.edge
            categorical = torch.where(above, (categorical + 1) % 10, categorical)
        return super().sample_with_codes(
            n, categorical=categorical, generator=generator, batch_size=batch_size
        )


@pytest.mark.parametrize(
    ("edge", "rows", "classes"),
    # halfway: only code 8's row is one class (9 on both sides); beyond the range: every
    # row is one class, and 8 and 9 share class 9
    [(0.0, 1, 1), (1.5, 10, 9)],
)
def test_traversal_rows_count_the_grid_rows_of_one_class_and_their_classes(edge, rows, classes):
    digits = load_dataset("digits")
    model = MorphsAlongTheSweep(digits, edge)
    ctx = ScoringContext(digits, digits.test.x[:100], torch.device("cpu"), model=model)
    got = score_code_accuracy(ctx)
    assert got["traversal_rows_one_class_s8"] == rows
    assert got["traversal_row_classes_s8"] == classes


def test_traversal_rows_reads_labels_row_by_row():
    labels = np.array([[3, 3, 3], [3, 3, 3], [1, 1, 2], [0, 0, 0]])
    assert traversal_rows(labels) == (3, 2)
    assert traversal_rows(np.zeros((0, 8), int)) == (0, 0)


def test_models_without_a_categorical_code_skip_it():
    digits = load_dataset("digits")
    ctx = ScoringContext(digits, digits.test.x[:20], torch.device("cpu"), model=object())
    assert score_code_accuracy(ctx) == {}
