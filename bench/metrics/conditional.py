"""Class-conditional metrics: intra-class FD, conditional accuracy and CAS.

Each judges samples against the class they were asked for (ctx.fake_labels), not the
class a classifier sees in them: intra-class FD (Miyato & Koyama 2018) compares each class's
samples with that class's training images, conditional accuracy asks the dataset's
classifier whether the samples look like their class, and the Classification Accuracy Score
(Ravuri & Vinyals 2019) trains a fresh classifier on the samples and their asked labels and
tests it on real images. Per-class values go to ctx.artifacts["per_class"] for the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from bench.cache import Cache, default_cache_dir, hash_key
from bench.data import ImageDataset
from bench.errors import UserError
from bench.features.classifier import RECIPE, fit_classifier, measure_accuracy
from bench.metrics import register_metric
from bench.metrics.fd import frechet_distance
from bench.scoring import ScoringContext

if TYPE_CHECKING:
    from bench.metrics.fd import ArrayLike

CAS_SEED = 0  # CAS and its real ceiling train with this seed: same samples, same number


def check_labels(labels: ArrayLike, n: int, num_classes: int, name: str) -> np.ndarray:
    """`labels` as an int64 array of length n with values in [0, num_classes)."""
    arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if not np.issubdtype(arr.dtype, np.integer) or arr.shape != (n,):
        raise UserError(
            f"{name} must be {n} integer class indices (one per sample), "
            f"got {arr.dtype} of shape {arr.shape}"
        )
    if n and (arr.min() < 0 or arr.max() >= num_classes):
        raise UserError(
            f"{name} must lie in [0, {num_classes}), got values from {arr.min()} to {arr.max()}"
        )
    return arr.astype(np.int64)


def intra_class_fd(
    fake_feats: ArrayLike,
    fake_labels: ArrayLike,
    train_feats: ArrayLike,
    train_labels: ArrayLike,
    num_classes: int,
) -> np.ndarray:
    """Per class c, the Fréchet distance between the features of the samples asked for c and
    those of the training images of class c: a (num_classes,) float64 array.

    Refuses (UserError) when a class has fewer than 2 samples or training images."""
    fake_feats, train_feats = np.asarray(fake_feats), np.asarray(train_feats)
    fake_labels = check_labels(fake_labels, len(fake_feats), num_classes, "sample labels")
    train_labels = check_labels(train_labels, len(train_feats), num_classes, "training labels")
    fake_counts = np.bincount(fake_labels, minlength=num_classes)
    train_counts = np.bincount(train_labels, minlength=num_classes)
    for what, counts in (("samples", fake_counts), ("training images", train_counts)):
        if counts.min() < 2:
            c = int(counts.argmin())
            raise UserError(
                f"intra-class FD needs at least 2 {what} of every class, class {c} has "
                f"{counts[c]}; ask for at least {2 * num_classes} class-balanced samples"
            )
    return np.array(
        [
            frechet_distance(fake_feats[fake_labels == c], train_feats[train_labels == c])
            for c in range(num_classes)
        ]
    )


def conditional_accuracy(
    predicted: ArrayLike, asked: ArrayLike, num_classes: int
) -> tuple[float, list[float | None]]:
    """Share of samples whose predicted class is the one asked for, overall and per asked
    class (None for a class no sample was asked for)."""
    asked = check_labels(asked, len(asked), num_classes, "sample labels")
    predicted = check_labels(predicted, len(asked), num_classes, "predicted labels")
    if len(asked) == 0:
        raise UserError("conditional accuracy needs at least one sample")
    hit = predicted == asked
    asked_per_class = np.bincount(asked, minlength=num_classes)
    hits_per_class = np.bincount(asked, weights=hit.astype(np.float64), minlength=num_classes)
    per_class = [
        float(h / a) if a else None for h, a in zip(hits_per_class, asked_per_class, strict=True)
    ]
    return float(hit.mean()), per_class


def classification_accuracy_score(
    images: torch.Tensor,
    labels: ArrayLike,
    data: ImageDataset,
    device: torch.device,
    *,
    seed: int = CAS_SEED,
    recipe: dict = RECIPE,
    desc: str = "CAS: training a classifier on the samples",
) -> float:
    """Top-1 accuracy on `data`'s real test split of a SmallCNN trained by `recipe` (the
    shipped classifiers' recipe) on `images` with `labels` only."""
    y = check_labels(labels, len(images), data.num_classes, "sample labels")
    net = fit_classifier(
        images, torch.from_numpy(y), data.num_classes, device, seed=seed, recipe=recipe, desc=desc
    )
    return measure_accuracy(net, data, device)


def real_subset(train_size: int, n: int, seed: int = CAS_SEED) -> np.ndarray:
    """Indices of n training images, seeded: without replacement when the split has that
    many, else with replacement (n above the split's size repeats images)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(train_size, n, replace=n > train_size))


def cas_real_ceiling(
    data: ImageDataset, n: int, device: torch.device, *, recipe: dict = RECIPE
) -> float:
    """CAS's recipe trained on n real training images with their labels (real_subset):
    what a perfect model's n samples would score. Cached per dataset content, n, recipe and
    device type (CPU and CUDA training differ in the last digits), so it trains once however
    many jobs ask."""

    def train() -> dict:
        idx = torch.from_numpy(real_subset(len(data.train.x), n))
        acc = classification_accuracy_score(
            data.train.x[idx],
            data.train.y[idx],
            data,
            device,
            recipe=recipe,
            desc=f"CAS ceiling: training on {n} real {data.name} images",
        )
        return {"accuracy": acc}

    key = hash_key("cas_real_ceiling", data.content_hash, n, recipe, CAS_SEED, device.type)
    return float(Cache(default_cache_dir()).get_or_compute("cas", key, train)["accuracy"])


def _asked_labels(ctx: ScoringContext, metric: str) -> np.ndarray:
    if ctx.fake_labels is None:
        raise UserError(
            f"metric {metric!r} needs the class each sample was asked for: use a "
            "class-conditional model (num_classes) or a samples file with `labels`"
        )
    return check_labels(ctx.fake_labels, ctx.n, ctx.data.num_classes, "sample labels")


def _per_class(ctx: ScoringContext) -> dict:
    return ctx.artifacts.setdefault("per_class", {"classes": list(range(ctx.data.num_classes))})


@register_metric(
    "intra_fd",
    columns={
        "intra_fd_": {"direction": "lower", "order": 2, "sweep": 2},
        "intra_fd_worst_": ("lower", 2),
    },
    needs={"images", "labels", "sample_labels"},
    per_extractor=True,
)
def score_intra_fd(ctx: ScoringContext, extractor: str) -> dict[str, float]:
    """Intra-class FD (Miyato & Koyama 2018): mean and worst over classes of the FD between
    the samples asked for a class and that class's training images."""
    asked = _asked_labels(ctx, "intra_fd")
    fake, train = ctx.features(extractor, "fake"), ctx.features(extractor, "train")
    per_class = intra_class_fd(fake, asked, train, ctx.data.train.y, ctx.data.num_classes)
    col = ctx.column(extractor)
    _per_class(ctx)[f"intra_fd_{col}"] = per_class.tolist()
    return {
        f"intra_fd_{col}_n{ctx.n}_train": float(per_class.mean()),
        f"intra_fd_worst_{col}_n{ctx.n}_train": float(per_class.max()),
    }


@register_metric(
    "cond_accuracy",
    columns={"cond_accuracy": {"direction": "higher", "order": 13, "sweep": 3, "headline": True}},
    needs={"images", "labels", "sample_labels"},
)
def score_cond_accuracy(ctx: ScoringContext) -> dict[str, float]:
    """Top-1 accuracy of the dataset's classifier on the samples against the classes asked
    for; beside it the classifier's accuracy on the real test split (the ceiling)."""
    asked = _asked_labels(ctx, "cond_accuracy")
    k = ctx.data.num_classes
    accuracy, per_class = conditional_accuracy(ctx.classifier_logits("fake").argmax(1), asked, k)
    ceiling, _ = conditional_accuracy(ctx.classifier_logits("test").argmax(1), ctx.data.test.y, k)
    _per_class(ctx)["cond_accuracy"] = per_class
    return {"cond_accuracy": accuracy, "cond_accuracy_real_ceiling": ceiling}


@register_metric(
    "cas", columns={"cas_": ("higher", 14)}, needs={"images", "labels", "sample_labels"}
)
def score_cas(ctx: ScoringContext) -> dict[str, float]:
    """Classification Accuracy Score (Ravuri & Vinyals 2019): the dataset classifier's
    recipe trained on the samples and their asked labels, top-1 on the real test split;
    beside it the same recipe on as many real training images (the ceiling)."""
    asked = _asked_labels(ctx, "cas")
    return {
        f"cas_n{ctx.n}": classification_accuracy_score(ctx.fake, asked, ctx.data, ctx.device),
        f"cas_n{ctx.n}_real_ceiling": cas_real_ceiling(ctx.data, ctx.n, ctx.device),
    }
