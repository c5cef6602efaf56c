"""Vendi score (Friedman & Dieng 2023): the effective number of distinct samples.

exp of the Shannon entropy of the eigenvalues of K / n, K the cosine-similarity kernel of the
features (rows L2-normalized, K = X X^T). It needs no reference set: 1 for n identical
samples, n for n mutually orthogonal ones. The non-zero eigenvalues of X X^T / n equal those
of X^T X / n, so the smaller of the two Gram matrices is decomposed. The `vendi-score`
package (score_X with normalize=True, q = 1) is the oracle in tests/metrics/test_vendi.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from bench.errors import UserError
from bench.metrics import register_metric
from bench.metrics.fd import as_features, check_finite

if TYPE_CHECKING:
    from bench.metrics.fd import ArrayLike
    from bench.scoring import ScoringContext


def vendi_score(features: ArrayLike) -> float:
    """Vendi score (order q = 1, cosine kernel) of `features` (n, d)."""
    x = as_features(features, "features").astype(np.float64)
    check_finite(x, "features")
    norms = np.linalg.norm(x, axis=1)
    if (norms == 0).any():
        raise UserError(
            f"{int((norms == 0).sum())} feature vectors are all zero; "
            "the cosine kernel of the Vendi score is undefined for them"
        )
    x /= norms[:, None]
    n, d = x.shape
    gram = x.T @ x if d < n else x @ x.T
    # One BLAS thread: multithreaded eigensolvers collapse on shared cores (see bench.metrics.fd).
    from scipy import linalg  # imported where used: a refused suite stays fast

    with threadpool_limits(1, user_api="blas"):
        w = linalg.eigvalsh(gram / n)
    w = w[w > 0]
    return float(np.exp(-(w * np.log(w)).sum()))


@register_metric("vendi", columns={"vendi_": ("higher", 17.5)}, per_extractor=True)
def score_vendi(ctx: ScoringContext, extractor: str) -> dict[str, float]:
    """Vendi score: the effective number of distinct samples, no reference set needed
    (Friedman & Dieng 2023)."""
    return {f"vendi_{ctx.column(extractor)}_n{ctx.n}": vendi_score(ctx.features(extractor, "fake"))}
