"""Mode coverage: 2-D Gaussian mixtures, classifier labels, stacked (1000-mode) digits.

Every KL here is in nats, sum over bins with p > 0 of p * log(p / q), where p is the
generated distribution and q the reference ("reverse KL" in VEEGAN / PacGAN terms).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from bench.errors import UserError
from bench.metrics import register_metric
from bench.metrics.distances import ArrayLike, check_same_space, nearest, points
from bench.scoring import ScoringContext, equal_size_subset


def gmm_modes(samples: ArrayLike, centers: ArrayLike, sigma: float) -> dict[str, float]:
    """Mode statistics of samples from a model of a Gaussian mixture with std `sigma`.

    A sample is high quality (HQ) when its Euclidean distance to the nearest component
    center is at most 3 sigma. Returns
    - modes: number of components with at least one HQ sample assigned to them;
    - hq_share: share of all samples that are HQ;
    - reverse_kl: KL(p || uniform) = sum_i p_i log(p_i K), p the histogram of HQ samples
      over their nearest components and K the number of components (PacGAN, VEEGAN);
      0 when every component holds the same number of HQ samples, log(K / j) when they
      spread evenly over j components; nan when no sample is HQ.
    """
    x = points(samples, "samples")
    c = points(centers, "mixture centers")
    check_same_space(x, c, ("samples", "mixture centers"))
    if not (isinstance(sigma, numbers.Real) and math.isfinite(sigma) and sigma > 0):
        raise UserError(f"sigma must be a positive number, got {sigma!r}")
    dist, comp = nearest(x, c, 1)
    hq = dist[:, 0] <= 3 * sigma
    counts = torch.bincount(comp[hq, 0], minlength=c.n).cpu().numpy()
    kl = _kl(counts / counts.sum(), np.full(c.n, 1 / c.n)) if counts.sum() else math.nan
    return {
        "modes": int((counts > 0).sum()),
        "hq_share": hq.double().mean().item(),
        "reverse_kl": kl,
    }


def class_coverage(
    pred_labels: ArrayLike,
    train_labels: ArrayLike,
    num_classes: int,
    *,
    test_pred_labels: ArrayLike | None = None,
) -> dict[str, float]:
    """How the classifier's labels of generated samples cover the training classes.

    Returns classes_hit (classes with at least one generated sample), kl =
    KL(p_gen || p_train) (inf when a class absent from train is generated) and
    tv = 0.5 * sum |p_gen - p_train|. With `test_pred_labels` (the classifier's labels of
    real test images; pass a subset as large as the generated set) the same three come
    back as test_classes_hit, test_kl, test_tv: the noise floor of a perfect model.
    """
    _check_num_classes(num_classes)
    p_train = _histogram(train_labels, "train labels", num_classes)
    out = _coverage(_histogram(pred_labels, "predicted labels", num_classes), p_train)
    if test_pred_labels is not None:
        floor = _coverage(_histogram(test_pred_labels, "test labels", num_classes), p_train)
        out.update({f"test_{k}": v for k, v in floor.items()})
    return out


def stacked_modes(channel_labels: ArrayLike, num_classes: int = 10) -> dict[str, float]:
    """Modes of stacked digits: the mode of a sample is its triple of per-channel classes.

    `channel_labels` is (n, 3), the classifier's label of each channel. Returns modes
    (distinct triples seen, of num_classes**3) and kl = KL(p || uniform over all
    num_classes**3 triples); a perfect model still shows kl ~ (K - 1) / (2n) at n samples.
    """
    _check_num_classes(num_classes)
    labels = _labels(channel_labels, "channel labels", num_classes, ndim=2)
    if labels.shape[1] != 3:
        raise UserError(f"channel labels must have shape (n, 3), got {labels.shape}")
    mode = (labels[:, 0] * num_classes + labels[:, 1]) * num_classes + labels[:, 2]
    total = num_classes**3
    counts = np.bincount(mode, minlength=total)
    return {
        "modes": int((counts > 0).sum()),
        "kl": _kl(counts / counts.sum(), np.full(total, 1 / total)),
    }


def _coverage(p: np.ndarray, q: np.ndarray) -> dict[str, float]:
    return {
        "classes_hit": int((p > 0).sum()),
        "kl": _kl(p, q),
        "tv": 0.5 * float(np.abs(p - q).sum()),
    }


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    seen = p > 0
    if (q[seen] == 0).any():
        return math.inf
    return float(np.sum(p[seen] * np.log(p[seen] / q[seen])))


def _histogram(labels: ArrayLike, name: str, num_classes: int) -> np.ndarray:
    counts = np.bincount(_labels(labels, name, num_classes, ndim=1), minlength=num_classes)
    return counts / counts.sum()


def _labels(labels: ArrayLike, name: str, num_classes: int, *, ndim: int) -> np.ndarray:
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if not np.issubdtype(arr.dtype, np.integer):
        raise UserError(f"{name} must be integer class indices, got dtype {arr.dtype}")
    if arr.ndim != ndim or arr.shape[0] == 0:
        raise UserError(f"{name} must be a non-empty {ndim}-D array, got shape {arr.shape}")
    if arr.min() < 0 or arr.max() >= num_classes:
        raise UserError(
            f"{name} must lie in [0, {num_classes}), got values from {arr.min()} to {arr.max()}"
        )
    return arr.astype(np.int64)


def _check_num_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise UserError(f"num_classes must be a positive integer, got {num_classes!r}")


@register_metric(
    "class_coverage",
    columns={"classes_hit": ("higher", 9), "class_kl": ("lower", 10), "class_tv": ("lower", 10)},
    needs={"images", "labels"},
)
def score_class_coverage(ctx: ScoringContext) -> dict[str, float]:
    """Classes hit, KL and TV of the classifier's labels of the samples against the training
    labels (or the classes asked of a conditional model), with the same for an equally
    sized real test subset (the noise floor).

    Against the asked classes, a class-balanced conditional model is judged against balance,
    not against the training split's imbalance."""
    fake_labels = ctx.classifier_logits("fake").argmax(1)
    test_logits = ctx.classifier_logits("test")
    k = ctx.data.num_classes
    if ctx.fake_labels is None:
        reference, reference_name = ctx.data.train.y.numpy(), "train"
        test_labels = equal_size_subset(test_logits, ctx.n).argmax(1)
    else:
        reference, reference_name = ctx.fake_labels.numpy(), "asked"
        rows = class_matched_rows(ctx.data.test.y.numpy(), reference)
        test_labels = test_logits[rows].argmax(1)
    m = class_coverage(fake_labels, reference, k, test_pred_labels=test_labels)
    ctx.artifacts["class_histogram"] = {
        "samples": np.bincount(fake_labels, minlength=k).tolist(),
        "reference": reference_name,
        reference_name: np.bincount(reference, minlength=k).tolist(),
    }
    return {
        "classes_hit": m["classes_hit"],
        "class_kl": m["kl"],
        "class_tv": m["tv"],
        "class_kl_test_floor": m["test_kl"],
        "class_tv_test_floor": m["test_tv"],
    }


def class_matched_rows(test_labels: np.ndarray, asked: np.ndarray) -> np.ndarray:
    """Rows of real test images with the asked classes, one per asked label (a class's
    images in order, repeated when it has fewer than were asked): a perfect conditional
    model's samples, for the noise floor."""
    rows = np.empty(len(asked), dtype=np.int64)
    for c in np.unique(asked):
        of_class = np.flatnonzero(test_labels == c)
        if len(of_class) == 0:
            raise UserError(f"class_coverage: the test split has no image of asked class {c}")
        where = np.flatnonzero(asked == c)
        rows[where] = of_class[np.arange(len(where)) % len(of_class)]
    return rows


@register_metric(
    "modes",
    columns={
        "modes_captured": {"direction": "higher", "order": 11, "headline": True},
        "modes_hq": ("higher", 11),
        "modes_reverse_kl": ("lower", 11),
        "stacked_modes": ("higher", 12),
        "stacked_kl": ("lower", 12),
    },
)
def score_modes(ctx: ScoringContext) -> dict[str, float]:
    """2-D mixtures: modes captured, high-quality share, reverse KL; stacked digits: modes
    of k**3 and KL to uniform (VEEGAN/PacGAN)."""
    if "stacked_base" in ctx.data.meta:
        from bench.features.classifier import load_classifier

        clf = load_classifier(ctx.data, ctx.device)
        k = clf.base_classes
        m = stacked_modes(clf.channel_labels(ctx.fake), k)
        return {f"stacked_modes_of{k**3}": m["modes"], "stacked_kl_uniform": m["kl"]}
    if "centers" not in ctx.data.meta:
        return {}
    m = gmm_modes(ctx.fake, np.asarray(ctx.data.meta["centers"]), ctx.data.meta["sigma"])
    return {
        "modes_captured": m["modes"],
        "modes_hq": m["hq_share"],
        "modes_reverse_kl": m["reverse_kl"],
    }
