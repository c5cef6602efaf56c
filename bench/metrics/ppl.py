"""Perceptual path length (Karras et al. 2019, "A Style-Based Generator Architecture for
Generative Adversarial Networks", section 3.1), computed as NVlabs stylegan2-ada-pytorch's
metrics/perceptual_path_length.py: for pairs of latents (a, b) and t ~ U(0, 1) (`full`) or
t = 0 (`end`), the distance between the images at t and t + epsilon on the path from a to b,
divided by epsilon^2 (epsilon = 1e-4); the distances below their 1st and above their 99th
percentile (numpy's 'lower' percentiles) are dropped and the rest averaged.

A model opts in by declaring a latent interpolation (the plug-in contract in README):
    latent_interpolation = "lerp" | "slerp"  # how paths run in its latent space
    draw_latents(n, *, generator) -> (n, d) float tensor  # where paths start and end
    decode(latents) -> float NCHW images in [-1, 1] of the dataset's shape, unquantized
                       and deterministic (no fresh noise per call)
StyleGAN's paths run in W (lerp), DCGAN's and WGAN-GP's in Z (slerp, the spherical path
between Gaussian latents). Models without it skip the metric.

Two distances, each its own suite metric and columns, so that they are never confused (and
the interpolation in the name: lengths along W's straight paths and Z's great circles are
not comparable, so they are never ranked against each other):
- `ppl` (the default): the squared Euclidean distance between the dataset classifier's
  penultimate features (float64) of the two images, in `ppl_{end,full}_{lerp,slerp}_classifier`;
- `ppl_lpips_vgg16`: LPIPS v0.1 with VGG16 (Karras et al.'s distance; bench.features.
  lpips_vgg16, 8x8 to 32x32 images upsampled to 64x64), computed in float64 like the
  classifier's, in `ppl_{end,full}_{lerp,slerp}_lpips_vgg16`. It needs the VGG16 weights
  file (a suite's `weights: {lpips_vgg16: PATH}`), checked before anything trains. The name
  follows the feature-space metrics' METRIC_NETWORK (`fd_dinov2_vitl14`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from bench.metrics import register_metric
from bench.scoring import ScoringContext

EPSILON = 1e-4
PERCENTILES = (1, 99)
SEED = 2019  # the paths are drawn from their own stream, the same for every model
VARIANTS = ("end", "full")

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation sin((1-t) omega) / sin omega a + sin(t omega) / sin omega b,
    omega the angle between a and b (torchmetrics' slerp_any); lerp where a or b is zero or
    they are (anti)parallel."""
    a_unit = a / a.norm(dim=-1, keepdim=True).clamp_min(eps)
    b_unit = b / b.norm(dim=-1, keepdim=True).clamp_min(eps)
    d = (a_unit * b_unit).sum(dim=-1, keepdim=True)
    omega = d.clamp(-1, 1).acos()
    denom = omega.sin().clamp_min(eps)
    out = ((1 - t) * omega).sin() / denom * a + (t * omega).sin() / denom * b
    degenerate = (a_unit.norm(dim=-1, keepdim=True) < eps) | (
        b_unit.norm(dim=-1, keepdim=True) < eps
    )
    degenerate |= (d > 1 - eps) | (d < -1 + eps)
    return torch.where(degenerate, lerp(a, b, t), out)


INTERPOLATIONS = {"lerp": lerp, "slerp": slerp}


def declares_interpolation(model: object) -> bool:
    return (
        getattr(model, "latent_interpolation", None) in INTERPOLATIONS
        and callable(getattr(model, "draw_latents", None))
        and callable(getattr(model, "decode", None))
    )


def path_distances(
    model,
    distance: Distance,
    n: int,
    variant: str,
    *,
    generator: torch.Generator,
    batch_size: int = 256,
    epsilon: float = EPSILON,
) -> np.ndarray:
    """The n scaled distances D(G(p(t)), G(p(t + epsilon))) / epsilon^2: all start latents,
    then all end latents, then (full) all t are drawn from `generator`."""
    interpolate = INTERPOLATIONS[model.latent_interpolation]
    a = model.draw_latents(n, generator=generator)
    b = model.draw_latents(n, generator=generator)
    shape = (n,) + (1,) * (a.ndim - 1)
    t = torch.rand(shape, generator=generator) if variant == "full" else torch.zeros(shape)
    out = []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            ab, bb, tb = a[i : i + batch_size], b[i : i + batch_size], t[i : i + batch_size]
            tb = tb.to(ab.device, ab.dtype)
            start, end = interpolate(ab, bb, tb), interpolate(ab, bb, tb + epsilon)
            images = model.decode(torch.cat([start, end]))
            x0, x1 = images.chunk(2)
            out.append((distance(x0, x1) / epsilon**2).double().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


def filtered_mean(distances: np.ndarray, percentiles: tuple[int, int] = PERCENTILES) -> float:
    """The mean of the distances within their [1st, 99th] percentiles ('lower')."""
    if len(distances) == 0:
        return math.nan
    lo = np.percentile(distances, percentiles[0], method="lower")
    hi = np.percentile(distances, percentiles[1], method="lower")
    return float(distances[(distances >= lo) & (distances <= hi)].mean())


def feature_distance(embed: Callable[[torch.Tensor], torch.Tensor]) -> Distance:
    """Squared Euclidean distance between the embeddings of two image batches."""

    def distance(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        return (embed(x0) - embed(x1)).square().sum(dim=1)

    return distance


def ppl(
    model, distance: Distance, n: int, *, seed: int = SEED, batch_size: int = 256
) -> dict[str, float]:
    """{variant: PPL} for `end` and `full`, from their own seeded path streams."""
    out = {}
    for k, variant in enumerate(VARIANTS):
        gen = torch.Generator().manual_seed(seed + k)
        d = path_distances(model, distance, n, variant, generator=gen, batch_size=batch_size)
        out[variant] = filtered_mean(d)
    return out


@register_metric("ppl", columns={"ppl_": ("lower", 18)}, needs={"images", "labels", "model"})
def score_ppl(ctx: ScoringContext) -> dict[str, float]:
    """Perceptual path length (end and full) in the dataset classifier's features, for
    models that declare a latent interpolation; others skip it."""
    from bench.features.classifier import load_classifier

    if not declares_interpolation(ctx.model):
        return {}
    clf = load_classifier(ctx.data, ctx.device)
    values = ppl(ctx.model, feature_distance(clf.embed_float), ctx.n, batch_size=ctx.batch_size)
    how = ctx.model.latent_interpolation  # lerp (W) and slerp (Z) paths: columns apart
    return {f"ppl_{variant}_{how}_classifier": v for variant, v in values.items()}


LPIPS_BATCH = 16  # paths per batch: VGG16's float64 activations at 64x64 are ~10 MB an image


@register_metric(
    "ppl_lpips_vgg16",
    columns={
        "ppl_end_lerp_lpips_vgg16": ("lower", 18.5),
        "ppl_full_lerp_lpips_vgg16": ("lower", 18.5),
        "ppl_end_slerp_lpips_vgg16": ("lower", 18.5),
        "ppl_full_slerp_lpips_vgg16": ("lower", 18.5),
    },
    needs={"images", "model"},
    also=("lpips_vgg16",),
)
def score_ppl_lpips(ctx: ScoringContext) -> dict[str, float]:
    """Perceptual path length (end and full) in LPIPS-VGG16 (the VGG16 weights file from
    `weights: {lpips_vgg16: PATH}`), for models that declare a latent interpolation."""
    from bench.features.lpips_vgg16 import load_lpips

    if not declares_interpolation(ctx.model):
        return {}
    weights = ctx.weights.get("lpips_vgg16")
    lp = load_lpips(None if weights is None else str(weights), str(ctx.device), torch.float64)
    ctx.provenance.update(lp.provenance())
    values = ppl(ctx.model, lp.distance, ctx.n, batch_size=min(ctx.batch_size, LPIPS_BATCH))
    how = ctx.model.latent_interpolation
    return {f"ppl_{variant}_{how}_lpips_vgg16": v for variant, v in values.items()}
