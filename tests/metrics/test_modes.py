"""Mode coverage on constructed samples with hand-computed answers."""

import math

import numpy as np
import pytest
import torch

from bench.data.mixtures import grid25_centers, ring8_centers
from bench.errors import UserError
from bench.metrics.modes import class_coverage, gmm_modes, stacked_modes

RING_SIGMA, GRID_SIGMA = 0.01, 0.05


def around(centers, counts, sigma, seed=0):
    """counts[i] points at center i, each within 2 sigma of it."""
    rng = np.random.default_rng(seed)
    pts = np.repeat(centers, counts, axis=0)
    angle = rng.uniform(0, 2 * np.pi, len(pts))
    radius = rng.uniform(0, 2 * sigma, len(pts))
    return pts + radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)


def test_three_of_eight_ring_modes():
    counts = [10, 0, 10, 0, 0, 10, 0, 0]
    got = gmm_modes(around(ring8_centers(), counts, RING_SIGMA), ring8_centers(), RING_SIGMA)
    assert got["modes"] == 3
    assert got["hq_share"] == 1.0
    assert got["reverse_kl"] == pytest.approx(math.log(8 / 3), rel=1e-12)


def test_uniform_over_all_modes_has_zero_reverse_kl():
    samples = torch.from_numpy(around(grid25_centers(), [4] * 25, GRID_SIGMA)).float()
    got = gmm_modes(samples, grid25_centers(), GRID_SIGMA)
    assert got == {"modes": 25, "hq_share": 1.0, "reverse_kl": 0.0}


def test_far_points_are_not_high_quality():
    centers = ring8_centers()
    good = around(centers, [5] * 8, RING_SIGMA)  # 40 points, uniform over modes
    far = np.array([[0.0, 0.0], [3.0, 3.0], [1.0 + 3.5 * RING_SIGMA, 0.0]])
    edge = np.array([[1.0 + 2.9 * RING_SIGMA, 0.0]])  # still within 3 sigma of mode 0
    got = gmm_modes(np.concatenate([good, far, edge]), centers, RING_SIGMA)
    assert got["modes"] == 8
    assert got["hq_share"] == 41 / 44
    p = np.full(8, 5 / 41)
    p[0] = 6 / 41
    assert got["reverse_kl"] == pytest.approx(float(np.sum(p * np.log(8 * p))), rel=1e-12)


def test_no_high_quality_sample():
    got = gmm_modes(np.full((5, 2), 10.0), ring8_centers(), RING_SIGMA)
    assert got["modes"] == 0 and got["hq_share"] == 0.0 and math.isnan(got["reverse_kl"])


@pytest.mark.parametrize("dropped", range(10))
def test_dropping_classes(dropped):
    train = np.repeat(np.arange(10), 30)
    kept = np.arange(dropped, 10)
    pred = np.repeat(kept, 60)  # uniform over the kept classes
    got = class_coverage(pred, train, 10, test_pred_labels=np.arange(10).repeat(6))
    assert got["classes_hit"] == 10 - dropped
    assert got["kl"] == pytest.approx(math.log(10 / (10 - dropped)), abs=1e-12)
    assert got["tv"] == pytest.approx(dropped / 10, abs=1e-12)
    assert (got["test_classes_hit"], got["test_kl"], got["test_tv"]) == (10, 0.0, 0.0)


def test_class_tv_and_kl_closed_form():
    train = np.array([0, 1, 2, 3])  # uniform over 4
    pred = torch.tensor([0, 0, 0, 1])  # p = (3/4, 1/4, 0, 0)
    got = class_coverage(pred, train, 4)
    assert got["tv"] == pytest.approx(0.5, abs=1e-15)  # (1/2)(1/2 + 0 + 1/4 + 1/4)
    expected_kl = 0.75 * math.log(3) + 0.25 * math.log(1)
    assert got["kl"] == pytest.approx(expected_kl, rel=1e-12)
    assert "test_kl" not in got


def test_class_absent_from_train_gives_infinite_kl():
    assert class_coverage(np.array([0, 2]), np.array([0, 1]), 3)["kl"] == math.inf


def test_stacked_modes_counts_triples():
    triples = np.stack(np.meshgrid(*[np.arange(10)] * 3, indexing="ij"), -1).reshape(-1, 3)
    assert stacked_modes(triples) == {"modes": 1000, "kl": 0.0}
    half = triples[triples[:, 0] < 5]
    got = stacked_modes(np.concatenate([half, half]))
    assert got["modes"] == 500
    assert got["kl"] == pytest.approx(math.log(2), rel=1e-12)
    assert stacked_modes(np.array([[1, 2, 3]] * 7)) == {"modes": 1, "kl": math.log(1000)}
    # (1, 2, 3) and (3, 2, 1) are different modes.
    assert stacked_modes(np.array([[1, 2, 3], [3, 2, 1]]))["modes"] == 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gmm_modes(np.zeros((3, 3)), ring8_centers(), 0.01), "features"),
        (lambda: gmm_modes(np.zeros((3, 2)), ring8_centers(), 0.0), "sigma"),
        (lambda: gmm_modes(np.full((3, 2), np.inf), ring8_centers(), 0.01), "NaN or inf"),
        (lambda: class_coverage(np.array([0, 10]), np.arange(10), 10), r"\[0, 10\)"),
        (lambda: class_coverage(np.array([0.0, 1.0]), np.arange(10), 10), "integer"),
        (lambda: class_coverage(np.zeros((2, 2), int), np.arange(10), 10), "1-D"),
        (lambda: class_coverage(np.array([], int), np.arange(10), 10), "non-empty"),
        (lambda: stacked_modes(np.zeros((4, 2), int)), r"\(n, 3\)"),
        (lambda: stacked_modes(np.full((4, 3), -1)), r"\[0, 10\)"),
        (lambda: stacked_modes(np.zeros((4, 3), int), num_classes=0), "num_classes"),
    ],
)
def test_bad_input_raises_user_error(call, message):
    with pytest.raises(UserError, match=message):
        call()


def test_stacked_modes_score_a_copier_high_and_a_collapsed_model_low():
    from bench.data import load_dataset
    from bench.scoring import ScoringContext, score

    ds, cpu = load_dataset("stacked:digits"), torch.device("cpu")
    copier = ds.train.x[:1000]
    collapsed = torch.cat([ds.train.x[:1000, :1]] * 3, 1)  # one image in every channel
    good = score(ScoringContext(ds, copier, cpu), ["modes", "fd_classifier"])
    bad = score(ScoringContext(ds, collapsed, cpu), ["modes", "fd_classifier"])
    true_modes = len(set(ds.train.y[:1000].tolist()))
    assert good["stacked_modes_of1000"] >= 0.95 * true_modes
    assert bad["stacked_modes_of1000"] <= 10  # only triples (d, d, d) are reachable
    assert good["stacked_kl_uniform"] < bad["stacked_kl_uniform"]
    assert good["fd_classifier_n1000_train"] < bad["fd_classifier_n1000_train"]


def test_stacked_modes_through_the_scorer_with_the_base_classifier():
    from bench.data import load_dataset
    from bench.scoring import ScoringContext, score

    data = load_dataset("stacked:digits")
    cpu = torch.device("cpu")
    real = score(ScoringContext(data, data.train.x, cpu), ["modes"])
    true_triples = len(set(data.train.y.tolist()))
    # the base (digits) classifier is ~99% accurate per channel, so real images show about
    # as many modes as they hold distinct triples
    assert real["stacked_modes_of1000"] == pytest.approx(true_triples, rel=0.05)
    assert real["stacked_kl_uniform"] < 1.0
    one = score(ScoringContext(data, data.train.x[:1].repeat(50, 1, 1, 1), cpu), ["modes"])
    assert one == {"stacked_modes_of1000": 1, "stacked_kl_uniform": pytest.approx(math.log(1000))}


def test_classifier_metrics_share_one_pass_per_image_set(monkeypatch, tmp_path):
    """class_coverage and classifier_score read the same logits: the classifier runs once on
    the samples and once on the test split, and its labels are predict()'s. The test split's
    logits are cached: the next sample set (the suite's next job) runs it on its samples only."""
    from bench.data import load_dataset
    from bench.features.classifier import Classifier, load_classifier
    from bench.scoring import ScoringContext, score

    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path))
    data, cpu = load_dataset("digits"), torch.device("cpu")
    fake = data.train.x[:300]
    passes = []
    real_logits = Classifier.logits

    def counted(self, images, batch_size=512):
        passes.append(len(images))
        return real_logits(self, images, batch_size)

    monkeypatch.setattr(Classifier, "logits", counted)
    ctx = ScoringContext(data, fake, cpu)
    got = score(ctx, ["class_coverage", "classifier_score"])
    assert sorted(passes) == sorted([len(fake), len(data.test.x)])
    passes.clear()
    again = score(ScoringContext(data, fake[:200], cpu), ["class_coverage", "classifier_score"])
    assert passes == [200]
    assert again.keys() == got.keys()
    clf = load_classifier(data, cpu)
    expected = class_coverage(clf.predict(fake), data.train.y, data.num_classes)
    assert got["classes_hit"] == expected["classes_hit"]
    assert got["class_kl"] == pytest.approx(expected["kl"], abs=1e-12)


def test_class_coverage_of_asked_classes_judges_the_model_not_the_training_split():
    """A conditional model asked for balanced classes that returns exactly those classes
    (real test images of them) scores KL 0 against the asked classes, not the KL of the
    training split's imbalance, and its floor is that of real images of the asked classes."""
    from bench.data import load_dataset
    from bench.metrics.modes import class_matched_rows
    from bench.scoring import ScoringContext, score

    digits = load_dataset("digits")
    asked = torch.arange(500) % digits.num_classes
    rows = class_matched_rows(digits.test.y.numpy(), asked.numpy())
    assert (digits.test.y.numpy()[rows] == asked.numpy()).all()
    fake = digits.test.x[rows]
    got = score(
        ScoringContext(digits, fake, torch.device("cpu"), fake_labels=asked), ["class_coverage"]
    )
    assert got["class_kl"] == got["class_kl_test_floor"]  # the same images: the floor itself
    assert got["class_kl"] < 1e-3
    # the training split's imbalance is not what it measures
    train_share = np.bincount(digits.train.y.numpy(), minlength=10) / len(digits.train.y)
    assert not np.allclose(train_share, 0.1)
    uncond = score(ScoringContext(digits, fake, torch.device("cpu")), ["class_coverage"])
    assert uncond["class_kl"] != got["class_kl"]


def test_class_matched_rows_repeats_a_class_with_fewer_images_than_asked():
    from bench.metrics.modes import class_matched_rows

    rows = class_matched_rows(np.array([1, 0, 1]), np.array([0, 0, 0, 1]))
    assert rows.tolist() == [1, 1, 1, 0]
    with pytest.raises(UserError, match="no image of asked class 2"):
        class_matched_rows(np.array([1, 0]), np.array([2]))
