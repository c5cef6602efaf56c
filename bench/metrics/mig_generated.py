"""MIG of a generator's codes, for models without an encoder: the codes are drawn and the
factors are read off the generated images, so the score is of (code -> factor) and not of
(image -> code) as the encoder `mig` is; its columns never share a name with `mig`'s.

A model with codes (README "Models with codes": `categorical_codes`, `continuous_codes`,
`continuous_range`, `sample_with_codes`) generates n images from codes drawn with a
generator seeded 0 (the categorical code uniform over its K values, each continuous code
uniform over the range; the noise from the same generator), so every model with the same
code layout gets the same codes. The factor reader (bench/features/factor_reader.py:
nearest image of the dataset's factor grid, exact on every image `shapes` draws) reads each
image's factors. MIG is then `bench.metrics.mig.mig` of the (n, K>0 + continuous) codes, the
categorical code one column of its values, against the read factors: the same 20-bin
histogram discretization and the same normalization, by H(read factor) (a factor the
samples never vary counts 0).

The codes are not the true factors even for a perfect generator: the 20 equal-width bins of
a uniform continuous code do not line up with the cells of a factor of 3 or 6 values, so a
generator whose codes are exactly the factors scores about 0.95, not 1 (tests/
test_generated_disentanglement.py states the value). Models without codes, or with fewer
than two (MIG's gap needs a second code), skip it.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.metrics import register_metric
from bench.metrics.mig import NUM_BINS, mig
from bench.scoring import ScoringContext


def has_codes(model: object) -> bool:
    k = int(getattr(model, "categorical_codes", 0) or 0)
    c = int(getattr(model, "continuous_codes", 0) or 0)
    return k + c > 0 and hasattr(model, "sample_with_codes")


def draw_codes(model: object, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The codes of n samples from `generator`: `categorical` (n,) int64 and `continuous`
    (n, continuous_codes) float32, each present when the model has such codes."""
    k = int(getattr(model, "categorical_codes", 0) or 0)
    c = int(getattr(model, "continuous_codes", 0) or 0)
    lo, hi = getattr(model, "continuous_range", (-1.0, 1.0))
    codes = {}
    if k:
        codes["categorical"] = torch.randint(k, (n,), generator=generator)
    if c:
        codes["continuous"] = lo + (hi - lo) * torch.rand((n, c), generator=generator)
    return codes


def generated_factors(ctx: ScoringContext, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(codes (n, d) float64, read factor indices (n, factors)) of n generated images, or
    None for a model without codes."""
    from bench.features.factor_reader import FactorReader

    if not has_codes(ctx.model):
        return None
    reader = FactorReader(ctx.data)
    generator = torch.Generator().manual_seed(0)
    codes = draw_codes(ctx.model, n, generator)
    images = ctx.model.sample_with_codes(n, generator=generator, batch_size=ctx.batch_size, **codes)
    columns = [codes["categorical"][:, None].double()] if "categorical" in codes else []
    if "continuous" in codes:
        columns.append(codes["continuous"].double())
    return torch.cat(columns, 1).numpy(), reader.read(images.cpu())


@register_metric(
    "mig_generated",
    columns={"mig_generated_": ("higher", 40.5)},
    needs={"images", "model", "factors"},
)
def score_mig_generated(ctx: ScoringContext) -> dict[str, float]:
    """MIG of a generator's codes against the factors read off its samples (codes drawn
    seeded 0, factors by the dataset's factor reader, then `mig`'s 20-bin histogram MIG);
    not comparable with the encoder `mig`. Models without two codes skip it."""
    drawn = generated_factors(ctx, ctx.n)
    if drawn is None or drawn[0].shape[1] < 2:
        return {}
    return {f"mig_generated_bins{NUM_BINS}_n{ctx.n}": mig(*drawn)}
