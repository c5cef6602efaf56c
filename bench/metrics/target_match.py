"""Distribution match of translations to the target domain's test split, in the target's
feature spaces: FD and KID as for generation (bench.metrics.fd, bench.metrics.kid), against
held-out targets, which no translation model trained on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.metrics import register_metric
from bench.metrics.fd import frechet_distance
from bench.metrics.kid import kid

if TYPE_CHECKING:
    from bench.scoring import ScoringContext


@register_metric(
    "fd_target",
    columns={"fd_target_": ("lower", 34)},
    needs={"images", "translation"},
    per_extractor=True,
)
def score_fd_target(ctx: ScoringContext, extractor: str) -> dict[str, float]:
    """Fréchet distance of the translations to the target domain's test split."""
    fake, test = ctx.features(extractor, "fake"), ctx.features(extractor, "test")
    return {f"fd_target_{ctx.column(extractor)}_n{ctx.n}": frechet_distance(fake, test)}


@register_metric(
    "kid_target",
    columns={"kid_target_": ("lower", 35)},
    needs={"images", "translation"},
    per_extractor=True,
)
def score_kid_target(ctx: ScoringContext, extractor: str) -> dict[str, float]:
    """KID of the translations to the target domain's test split, and its std."""
    mean, std = kid(ctx.features(extractor, "fake"), ctx.features(extractor, "test"))
    column = f"kid_target_{ctx.column(extractor)}_n{ctx.n}"
    return {column: mean, f"{column}_std": std}
