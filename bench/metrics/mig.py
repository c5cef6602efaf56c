"""Mutual information gap (Chen et al. 2018) of an encoder model's codes on a dataset with
known factors, as disentanglement_lib (google-research) computes it (metrics/mig.py):
each code dimension is discretized into NUM_BINS equal-width histogram bins over its
range, I(code_i; factor_k) is the discrete mutual information in nats, and MIG is the
mean over factors of (largest - second largest I over codes) / H(factor_k).

An encoder model declares `encode(x)`: uint8 NCHW images in, (n, d) float codes out (the
posterior mean for a VAE). Models without it skip the metric; a generator's codes would
need an inverse it does not have (`mig_generated` scores a generator's drawn codes against
the factors read off its samples instead, in columns of its own). The codes are those of
every image of the dataset (both splits: on `shapes` the whole factor grid, where the
factors are independent, so an oracle encoder that returns the true factors scores
exactly 1).
"""

from __future__ import annotations

import numpy as np
import torch

from bench.metrics import register_metric
from bench.scoring import ScoringContext

NUM_BINS = 20  # disentanglement_lib's configs (discretizer.num_bins)


def encoded_split(ctx: ScoringContext, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(codes (n, d) float64, factor indices (n, k)) of a split, or None when the model
    declares no `encode`."""
    encode = getattr(ctx.model, "encode", None)
    if encode is None:
        return None
    images = getattr(ctx.data, split).x
    with torch.no_grad():
        codes = [
            torch.as_tensor(encode(images[i : i + ctx.batch_size])).double().cpu()
            for i in range(0, len(images), ctx.batch_size)
        ]
    return torch.cat(codes).numpy(), np.asarray(ctx.data.meta[f"factors_{split}"])


def histogram_discretize(codes: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """(n, d) codes -> (n, d) bin indices 1..num_bins (np.digitize on np.histogram's
    left edges of each column)."""
    out = np.zeros(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram(codes[:, j], num_bins)[1][:-1]
        out[:, j] = np.digitize(codes[:, j], edges)
    return out


def discrete_mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """I(a; b) in nats of two integer label vectors, from their contingency table."""
    _, a_idx = np.unique(a, return_inverse=True)
    _, b_idx = np.unique(b, return_inverse=True)
    joint = np.zeros((a_idx.max() + 1, b_idx.max() + 1))
    np.add.at(joint, (a_idx, b_idx), 1.0)
    joint /= len(a)
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float(max((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum(), 0.0))


def mutual_info_matrix(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(d codes, k factors) matrix of I(code_i; factor_k) in nats."""
    return np.array(
        [
            [
                discrete_mutual_info(discrete_codes[:, i], factors[:, k])
                for k in range(factors.shape[1])
            ]
            for i in range(discrete_codes.shape[1])
        ]
    )


def mig(codes: np.ndarray, factors: np.ndarray, num_bins: int = NUM_BINS) -> float:
    """MIG of (n, d >= 2) codes against (n, k) discrete factors: 1 when each factor is
    read off exactly by one code and no other code tells anything about it. A factor that
    never varies (possible only in generated samples' read factors) counts 0."""
    m = mutual_info_matrix(histogram_discretize(codes, num_bins), factors)
    entropy = np.array([discrete_mutual_info(f, f) for f in factors.T])
    top = np.sort(m, axis=0)[::-1]
    gap = np.divide(top[0] - top[1], entropy, out=np.zeros_like(entropy), where=entropy > 0)
    return float(np.mean(gap))


@register_metric("mig", columns={"mig_": ("higher", 40)}, needs={"images", "model", "factors"})
def score_mig(ctx: ScoringContext) -> dict[str, float]:
    """Mutual information gap (Chen et al. 2018, disentanglement_lib's discrete MIG, 20
    bins) of an encoder model's codes of both splits against the dataset's known
    factors; models without `encode` skip it."""
    train, test = encoded_split(ctx, "train"), encoded_split(ctx, "test")
    if train is None:
        return {}
    codes, factors = (np.concatenate(pair) for pair in zip(train, test, strict=True))
    return {f"mig_bins{NUM_BINS}_all": mig(codes, factors)}
