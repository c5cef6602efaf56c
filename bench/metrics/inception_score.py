"""Inception score, or "classifier score" with a dataset's own classifier.

IS = exp(E_x KL(p(y|x) || p(y))), with p(y) the mean prediction within each of `splits`
consecutive chunks; mean and std (ddof=0) over the chunks, as in the original IS code
and torch-fidelity (whose chunk boundaries, i * n // splits, are used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bench.errors import UserError
from bench.metrics import register_metric
from bench.metrics.fd import check_finite, to_numpy

if TYPE_CHECKING:
    from bench.metrics.fd import ArrayLike
    from bench.scoring import ScoringContext

# Rows this close to summing to 1 (and within [0, 1]) are taken as probabilities.
_PROB_SUM_TOL = 1e-3


def class_probabilities(probs_or_logits: ArrayLike) -> np.ndarray:
    """(n, C) float64 probabilities: rows already in [0, 1] summing to 1 are renormalized,
    anything else is treated as logits and softmaxed."""
    x = to_numpy(probs_or_logits, "predictions", 2).astype(np.float64)
    check_finite(x, "predictions")
    if x.shape[1] < 2:
        raise UserError(f"predictions need at least 2 classes, got shape {x.shape}")
    sums = x.sum(axis=1, keepdims=True)
    if x.min() >= 0.0 and x.max() <= 1.0 and np.all(np.abs(sums - 1.0) <= _PROB_SUM_TOL):
        return x / sums
    from scipy.special import softmax  # imported where used: a refused suite stays fast

    return softmax(x, axis=1)


def inception_score(probs_or_logits: ArrayLike, *, splits: int = 10) -> tuple[float, float]:
    """Mean and std of exp(E KL(p(y|x) || p(y))) over `splits` chunks of (n, C) predictions."""
    p = class_probabilities(probs_or_logits)
    n = p.shape[0]
    if n < 2:
        raise UserError(f"predictions need at least 2 samples, got {n}")
    if not 1 <= splits <= n:
        raise UserError(f"splits must be in [1, {n}] for {n} samples, got {splits}")
    from scipy.special import xlogy

    scores = []
    for i in range(splits):
        chunk = p[i * n // splits : (i + 1) * n // splits]
        marginal = chunk.mean(axis=0)
        kl = (xlogy(chunk, chunk) - xlogy(chunk, marginal)).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


@register_metric(
    "classifier_score", columns={"classifier_score": ("higher", 17)}, needs={"images", "labels"}
)
def score_classifier_score(ctx: ScoringContext) -> dict[str, float]:
    """exp E[KL(p(y|x) || p(y))] with the dataset's classifier (Inception Score's formula)."""
    mean, std = inception_score(ctx.classifier_logits("fake"))
    return {"classifier_score": mean, "classifier_score_std": std}


@register_metric("inception_score", columns={"inception_score": ("higher", 18)}, needs={"images"})
def score_inception_score(ctx: ScoringContext) -> dict[str, float]:
    """Inception Score (10 splits) from the 1008-way Inception classifier, which only the
    torch hub weights file carries."""
    from bench.features.inception import inception_logits

    mean, std = inception_score(inception_logits(ctx.fake, mode="clean", device=ctx.device))
    return {f"inception_score_n{ctx.n}": mean, f"inception_score_n{ctx.n}_std": std}
