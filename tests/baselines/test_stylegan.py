"""StyleGAN: shapes, seeded determinism, the sampling options (truncation, noise), the
modulated convolution against the reference's fused form, style mixing and the tracked
average w. The plug-in contract (checkpoint round trip, NaN refusal) is in test_baselines."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_baselines import draw, fit, make, random_images, ring_points, roundtrip

from baselines.stylegan import Mapping, modulated_conv2d
from bench.errors import UserError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"width": 8, "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "batch_size": 8}


def stylegan(data, **options):
    return make("stylegan", data, **{**TINY, **options})


@pytest.fixture(scope="module")
def trained() -> dict:
    """A checkpoint after a few steps on random 8x8 images, with the data it came from."""
    data = random_images((1, 8, 8))
    model = stylegan(data)
    fit(model, data, steps=4)
    return {"data": data, "state": roundtrip(model.state_dict())}


def loaded(trained: dict, **options):
    model = stylegan(trained["data"], **options)
    model.load_state_dict(trained["state"])
    return model


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 16, 16), (3, 32, 32)])
def test_samples_have_the_data_shape(shape: tuple[int, int, int]) -> None:
    data = random_images(shape, n=8)
    model = stylegan(data)
    fit(model, data, steps=1)
    x = draw(model, n=5, batch_size=2)
    assert x.dtype == torch.uint8 and tuple(x.shape) == (5, *shape)


def test_a_seed_fixes_training_and_sampling(trained: dict) -> None:
    data = trained["data"]
    a, b = stylegan(data), stylegan(data)
    fit(a, data, steps=4)
    fit(b, data, steps=4, seed=1)
    assert torch.equal(draw(a), draw(loaded(trained)))
    assert not torch.equal(draw(a), draw(b))


def test_truncation_zero_gives_the_image_of_w_avg_for_every_z(trained: dict) -> None:
    model = loaded(trained, truncation=0.0, noise="const")
    x = draw(model, n=6)
    assert (x == x[0]).all()
    assert model.G_ema["mapping"].w_avg.abs().sum() > 0  # tracked, not the zero init
    img = model.decode(model.G_ema["mapping"].w_avg[None])
    assert torch.equal(x[0], ((img[0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8))


def test_truncation_pulls_samples_towards_the_mean_image(trained: dict) -> None:
    spread = []
    for psi in (1.0, 0.5):
        x = draw(loaded(trained, truncation=psi, noise="const"), n=64).float()
        spread.append(float(x.std(0).mean()))
    assert spread[1] < spread[0]


def test_noise_random_varies_samples_of_one_z_and_const_does_not(trained: dict) -> None:
    """psi = 0 makes every w the same: what differs between samples is the noise alone."""
    const = draw(loaded(trained, truncation=0.0, noise="const"), n=8)
    random = draw(loaded(trained, truncation=0.0, noise="random"), n=8)
    assert (const == const[0]).all()
    assert not (random == random[0]).all()


def test_sample_options_do_not_change_the_fit(trained: dict) -> None:
    from bench.models import resolve_model

    assert set(resolve_model("stylegan").SAMPLE_OPTIONS) == {"truncation", "noise"}
    model = loaded(trained, truncation=0.7, noise="const")
    assert model.sample_options == {"truncation": 0.7, "noise": "const"}


@pytest.mark.parametrize(
    "options, message",
    [
        ({"truncation": 1.5}, "truncation (psi) must be a number in [0, 1] (1: none), not 1.5"),
        ({"truncation": -0.1}, "truncation (psi) must be a number in [0, 1]"),
        ({"truncation": "high"}, "truncation (psi) must be a number in [0, 1]"),
        ({"truncation": True}, "truncation (psi) must be a number in [0, 1]"),
        ({"noise": "none"}, "noise must be 'random' or 'const', not 'none'"),
        ({"r1_every": 0}, "r1_every must be a positive int, not 0"),
    ],
)
def test_bad_options_are_one_line_errors(options: dict, message: str) -> None:
    with pytest.raises(UserError) as e:
        stylegan(random_images((1, 8, 8)), **options)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_points_and_large_images_are_refused() -> None:
    with pytest.raises(UserError, match="stylegan models images only, not points"):
        stylegan(ring_points())
    with pytest.raises(UserError, match="images up to 32x32, not 64x64"):
        stylegan(random_images((1, 64, 64), n=2))


def test_modulated_conv_equals_per_sample_modulated_demodulated_weights() -> None:
    """The non-fused path against modulated_conv2d's fused one (a grouped convolution with
    each sample's weights scaled by its styles and normalized per output channel)."""
    g = torch.Generator().manual_seed(0)
    x, weight = torch.randn(3, 4, 6, 6, generator=g), torch.randn(5, 4, 3, 3, generator=g)
    styles = torch.randn(3, 4, generator=g)
    w = weight[None] * styles[:, None, :, None, None]
    w = w * (w.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    fused = F.conv2d(x.reshape(1, -1, 6, 6), w.reshape(-1, 4, 3, 3), padding=1, groups=3)
    expected = fused.reshape(3, 5, 6, 6)
    got = modulated_conv2d(x, weight, styles, demodulate=True)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_mapping_tracks_the_average_w() -> None:
    mapping = Mapping(z_dim=4, w_dim=3, layers=2, w_avg_beta=0.9)
    z = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    w = mapping(z, track=True)
    torch.testing.assert_close(mapping.w_avg, 0.1 * w.mean(0))
    assert torch.equal(mapping.truncate(w, 0.0), mapping.w_avg.expand_as(w))
    assert torch.equal(mapping.truncate(w, 1.0), w)


@pytest.mark.parametrize("mixing, mixed", [(0.0, False), (1.0, True)])
def test_style_mixing_switches_w_from_a_cutoff_layer(mixing: float, mixed: bool) -> None:
    model = stylegan(random_images((1, 16, 16)), mixing=mixing)
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(4, 8, generator=gen)
    with torch.no_grad():
        ws = model._mixed_ws(z, gen)
    same_as_first = (ws == ws[:, :1]).all(dim=2).all(dim=0)  # per layer
    assert ws.shape == (4, model.synthesis.num_ws, 8)
    assert same_as_first[0]
    assert bool((~same_as_first).any()) is mixed
    if mixed:  # one cutoff: the layers before it keep the first w, the rest the second
        cutoff = int((~same_as_first).nonzero()[0])
        assert same_as_first[:cutoff].all() and not same_as_first[cutoff:].any()
