"""Glow: each layer's log-determinant against autograd's Jacobian, the whole flow's
invertibility and log-determinant, actnorm's data-dependent initialization, and the
`temperature` sampling option (the contract, determinism and checkpoints are
tests/baselines/test_baselines.py's, which runs glow with the other families)."""

from __future__ import annotations

import pytest
import torch

from baselines.glow import ActNorm, AffineCoupling, Glow, InvConv1x1, Step
from bench.data import ImageDataset, Split
from bench.errors import UserError
from bench.models import Budget, build_model, resolve_model

TINY = {"device": "cpu", "width": 8, "depth": 2, "batch_size": 16}


def random_images(shape=(1, 8, 8), n: int = 24) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)
    return ImageDataset("random", "images", Split(x), Split(x[:8]))


def randomized(module: torch.nn.Module, std: float = 0.3) -> torch.nn.Module:
    """In double precision with every parameter drawn at random: no layer is the identity
    it starts as (zero-initialized convolutions, actnorm before its initialization)."""
    torch.manual_seed(0)
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, std)
    return module


def jacobian_logdet(fn, x: torch.Tensor) -> float:
    jac = torch.autograd.functional.jacobian(lambda v: fn(v.view_as(x)).flatten(), x.flatten())
    sign, logabs = torch.linalg.slogdet(jac)
    assert sign != 0
    return logabs.item()


@pytest.mark.parametrize(
    "layer, channels",
    [
        (ActNorm(4), 4),
        (InvConv1x1(4), 4),
        (AffineCoupling(4, 8), 4),
        (AffineCoupling(6, 5), 6),
        (Step(4, 8), 4),
    ],
    ids=["actnorm", "invconv1x1", "coupling", "coupling-6ch", "step"],
)
def test_each_layer_log_det_is_the_jacobians_and_it_inverts(layer, channels: int) -> None:
    layer = randomized(layer)
    x = torch.randn(2, channels, 2, 3, dtype=torch.double)
    y, logdet = layer(x)
    assert y.shape == x.shape and logdet.shape == (2,)
    for i in range(2):
        expected = jacobian_logdet(lambda v: layer(v)[0], x[i : i + 1])
        assert logdet[i].item() == pytest.approx(expected, abs=1e-8)
    assert torch.allclose(layer.inverse(y), x, atol=1e-10)


def test_invconv_weight_is_the_lu_product_and_starts_as_a_rotation() -> None:
    torch.manual_seed(0)
    conv = InvConv1x1(5)
    w = conv.weight().detach()
    assert torch.allclose(w @ w.T, torch.eye(5), atol=1e-5)
    assert conv.log_s.sum().item() == pytest.approx(torch.linalg.slogdet(w)[1].item(), abs=1e-5)


def test_glow_inverts_to_1e5_and_its_log_det_is_the_jacobians() -> None:
    torch.manual_seed(0)
    flow = Glow((1, 8, 8), levels=2, depth=2, width=8)
    flow.initialize_actnorms()
    flow(torch.rand(16, 1, 8, 8) - 0.5)
    with torch.no_grad():  # couplings and priors away from their zero start
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.rand(4, 1, 8, 8) - 0.5
    eps, _ = flow(x)
    assert [tuple(e.shape[1:]) for e in eps] == flow.z_shapes == [(2, 4, 4), (8, 2, 2)]
    assert (flow.inverse(eps) - x).abs().max().item() < 1e-5

    small = randomized(Glow((1, 4, 4), levels=2, depth=1, width=4), std=0.1)
    x = torch.randn(1, 1, 4, 4, dtype=torch.double)
    eps, logdet = small(x)
    jac = jacobian_logdet(lambda v: torch.cat([e.flatten() for e in small(v)[0]]), x)
    assert logdet.item() == pytest.approx(jac, abs=1e-8)


def test_actnorm_initializes_on_the_first_training_batch_only() -> None:
    norm = ActNorm(3)
    x = torch.randn(64, 3, 4, 4) * torch.tensor([1.0, 5.0, 0.1])[:, None, None] + 3
    y, _ = norm(x)
    assert torch.equal(y, x)  # not initialized: the identity
    norm.initialize_next = True
    y, _ = norm(x)
    assert torch.allclose(y.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.std((0, 2, 3)), torch.ones(3), atol=1e-4)
    loc = norm.loc.detach().clone()
    norm(x * 2)
    assert torch.equal(norm.loc, loc)  # later batches leave it to the optimizer


def make(data: ImageDataset, **options):
    return build_model(resolve_model("glow"), data, {**TINY, **options})


@pytest.mark.parametrize("bad", [0, -0.5, 0.0, float("nan"), float("inf"), True, "hot", None])
def test_bad_temperature_is_one_line_naming_the_option(bad) -> None:
    with pytest.raises(UserError, match=r"^glow: temperature must be a number > 0") as e:
        make(random_images(), temperature=bad)
    assert "\n" not in str(e.value)


def test_temperature_is_a_sampling_option_that_narrows_the_samples() -> None:
    """One trained model serves every temperature (the runner's fit key leaves it out), and
    a lower temperature draws pixels closer to the model's mode."""
    assert resolve_model("glow").SAMPLE_OPTIONS == ("temperature",)
    data = random_images()
    trained = make(data)
    trained.fit(data, Budget(3), seed=0, progress=lambda s, m: None)
    spread = {}
    for t in (1.0, 0.5, 0.1):
        model = make(data, temperature=t)
        model.load_state_dict(trained.state_dict())
        x = model.sample(200, generator=torch.Generator().manual_seed(0)).float()
        spread[t] = x.std(0).mean().item()
    assert spread[1.0] > spread[0.5] > spread[0.1], spread


def test_images_that_cannot_be_squeezed_are_refused() -> None:
    with pytest.raises(UserError, match="glow: 6x6 images cannot be squeezed 2 times"):
        make(random_images((1, 6, 6)), levels=2)
    assert make(random_images((1, 6, 6))).config["levels"] == 1


def test_draws_whose_inverse_overflows_are_redrawn_and_a_diverged_model_refused() -> None:
    data = random_images()
    model = make(data)
    inverse = model.flow.inverse

    def overflowing(eps, temperature):  # the draws with a large first coordinate overflow
        x = inverse(eps, temperature)
        x[eps[0][:, 0, 0, 0] > 1.0] = float("nan")
        return x

    model.flow.inverse = overflowing
    x = model.sample(300, generator=torch.Generator().manual_seed(0), batch_size=100)
    assert x.dtype == torch.uint8 and x.shape == (300, 1, 8, 8)
    assert 0 < model.redrawn < 300
    again = model.sample(300, generator=torch.Generator().manual_seed(0), batch_size=100)
    assert torch.equal(x, again)
    model.flow.inverse = lambda eps, temperature: torch.full_like(inverse(eps, 1.0), float("nan"))
    with pytest.raises(UserError, match="NaN or inf"):
        model.sample(4, generator=torch.Generator().manual_seed(0))
