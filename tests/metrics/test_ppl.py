"""Perceptual path length: against torchmetrics' perceptual_path_length with the same
generator, distance and latents; against a generator linear in its latent (known answer);
the percentile filter; and the metric on the baselines that declare a latent interpolation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bench.data import load_dataset
from bench.metrics.ppl import (
    declares_interpolation,
    feature_distance,
    filtered_mean,
    path_distances,
    score_ppl,
)
from bench.models import build_model, resolve_model
from bench.scoring import ScoringContext

SHAPE = (1, 6, 6)


class Toy:
    """A float64 generator that declares a latent interpolation: tanh of an affine map
    (linear=False) or the affine map alone (linear=True)."""

    def __init__(self, interpolation: str, z_dim: int = 5, linear: bool = False, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        d = int(np.prod(SHAPE))
        self.A = torch.randn(d, z_dim, generator=g, dtype=torch.float64) / z_dim**0.5
        self.c = 0.1 * torch.randn(d, generator=g, dtype=torch.float64)
        self.latent_interpolation, self.z_dim, self.linear = interpolation, z_dim, linear

    def draw_latents(self, n: int, *, generator: torch.Generator) -> torch.Tensor:
        return torch.randn((n, self.z_dim), generator=generator, dtype=torch.float64)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = z @ self.A.T + self.c
        return (x if self.linear else torch.tanh(x)).reshape(-1, *SHAPE)


class Embed(nn.Module):
    """A fixed random conv feature map (float64)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten()).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SquaredFeatureDistance(nn.Module):
    """torchmetrics' sim_net: called with both image batches in [-1, 1]."""

    def __init__(self, embed: nn.Module):
        super().__init__()
        self.embed = embed

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        return feature_distance(self.embed)(x0, x1)


class TorchmetricsGenerator(nn.Module):
    """The toy as torchmetrics wants it: sample() hands out the latents our implementation
    draws (first the starts, then the ends), forward() gives images in [0, 255]."""

    def __init__(self, toy: Toy, latents: list[torch.Tensor]):
        super().__init__()
        self.toy, self.latents = toy, latents

    def sample(self, num_samples: int) -> torch.Tensor:
        return self.latents.pop(0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (self.toy.decode(z) + 1) * 127.5


@pytest.mark.parametrize("ours, theirs", [("lerp", "lerp"), ("slerp", "slerp_any")])
def test_equals_torchmetrics_on_the_same_generator_distance_and_latents(ours, theirs):
    from torchmetrics.functional.image import perceptual_path_length

    n, toy, embed = 300, Toy(ours), Embed()
    distance = feature_distance(embed)
    got = filtered_mean(path_distances(toy, distance, n, "end", generator=gen(5), batch_size=64))
    g = gen(5)
    latents = [toy.draw_latents(n, generator=g), toy.draw_latents(n, generator=g)]
    mean, _, _ = perceptual_path_length(
        TorchmetricsGenerator(toy, latents),
        num_samples=n,
        batch_size=64,
        interpolation_method=theirs,
        epsilon=1e-4,
        resize=None,
        lower_discard=0.01,
        upper_discard=0.99,
        sim_net=SquaredFeatureDistance(embed),
    )
    assert got == pytest.approx(float(mean), rel=1e-4)


@pytest.mark.parametrize("variant", ["end", "full"])
def test_a_generator_linear_in_its_latent_has_the_known_path_length(variant):
    """G(z) = A z + c, lerp, pixel distance: every scaled distance is |A (b - a)|^2."""
    n, toy = 200, Toy("lerp", linear=True)
    pixels = feature_distance(lambda x: x.flatten(1))
    d = path_distances(toy, pixels, n, variant, generator=gen(3), batch_size=64)
    g = gen(3)
    a, b = toy.draw_latents(n, generator=g), toy.draw_latents(n, generator=g)
    expected = ((b - a) @ toy.A.T).square().sum(1).numpy()
    np.testing.assert_allclose(d, expected, rtol=1e-6)
    assert filtered_mean(d) == pytest.approx(filtered_mean(expected), rel=1e-6)


def test_the_filter_drops_values_outside_the_1st_and_99th_lower_percentiles():
    values = np.arange(1.0, 101.0)  # 1st 'lower' percentile: 1, 99th: 99
    assert filtered_mean(values) == pytest.approx(50.0)
    assert filtered_mean(np.array([1.0, 1.0, 1e9])) == pytest.approx(1.0)
    assert np.isnan(filtered_mean(np.zeros(0)))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


TINY = {
    "stylegan": {"width": 8, "z_dim": 8, "w_dim": 8, "mapping_layers": 2},
    "dcgan": {"width": 8, "z_dim": 8},
    "wgan-gp": {"width": 8, "z_dim": 8},
}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize("name", list(TINY))
def test_the_baselines_that_declare_an_interpolation_are_scored(digits, name):
    model = build_model(resolve_model(name), digits, {"device": "cpu", **TINY[name]})
    assert declares_interpolation(model)
    fake = digits.train.x[:40]  # ctx.n: the number of paths
    ctx = ScoringContext(digits, fake, torch.device("cpu"), model=model, batch_size=16)
    scores = score_ppl(ctx)
    how = "lerp" if name == "stylegan" else "slerp"
    assert set(scores) == {f"ppl_end_{how}_classifier", f"ppl_full_{how}_classifier"}
    assert all(np.isfinite(v) and v > 0 for v in scores.values()), scores
    assert score_ppl(ctx) == scores  # the paths are seeded


def test_models_without_an_interpolation_skip_it(digits):
    model = build_model(resolve_model("vae"), digits, {"device": "cpu", "width": 8})
    assert not declares_interpolation(model)
    ctx = ScoringContext(digits, digits.train.x[:8], torch.device("cpu"), model=model)
    assert score_ppl(ctx) == {}
