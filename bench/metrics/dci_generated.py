"""DCI of a generator's codes, for models without an encoder: `dci`'s importance matrix
(one scikit-learn GradientBoostingClassifier per factor, random_state 0) fitted on
(code -> factor) pairs whose factors are read off generated images, not on (image -> code)
as the encoder `dci` is; its columns never share a name with `dci`'s.

The n samples are those of `mig_generated` (codes drawn with a generator seeded 0, images
from the model's `sample_with_codes`, factors by the dataset's factor reader): the first
n - n // 5 train the classifiers, the last n // 5 measure informativeness (their mean
accuracy). Disentanglement and completeness are `dci`'s formulas on that matrix. Models
without codes skip it.
"""

from __future__ import annotations

from bench.metrics import register_metric
from bench.metrics.dci import completeness, disentanglement, importance_matrix
from bench.metrics.mig_generated import generated_factors
from bench.scoring import ScoringContext


@register_metric(
    "dci_generated",
    columns={
        "dci_generated_disentanglement_": ("higher", 40.6),
        "dci_generated_completeness_": ("higher", 40.7),
        "dci_generated_informativeness_": ("higher", 40.8),
    },
    needs={"images", "model", "factors"},
)
def score_dci_generated(ctx: ScoringContext) -> dict[str, float]:
    """DCI of a generator's codes against the factors read off its samples (`dci`'s
    gradient-boosted importance matrix on code -> read factor; 4/5 of the n samples train,
    1/5 test); not comparable with the encoder `dci`. Models without codes skip it."""
    drawn = generated_factors(ctx, ctx.n)
    if drawn is None:
        return {}
    codes, factors = drawn
    cut = ctx.n - ctx.n // 5
    r, _, test_accuracy = importance_matrix(codes[:cut], factors[:cut], codes[cut:], factors[cut:])
    n = ctx.n
    return {
        f"dci_generated_disentanglement_n{n}": disentanglement(r),
        f"dci_generated_completeness_n{n}": completeness(r),
        f"dci_generated_informativeness_n{n}": test_accuracy,
    }
