"""Baseline families: the plug-in contract (fit / sample / state_dict), determinism,
checkpoints, likelihoods, and the sanity references. Tiny widths and budgets keep it fast."""

from __future__ import annotations

import io
import math

import pytest
import torch

from bench.data import ImageDataset, Split, load_dataset
from bench.errors import UserError
from bench.models import Budget, build_model, model_names, resolve_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Tiny architectures: enough to exercise every code path in well under a second per fit.
TINY = {
    "vae": {"width": 8, "z_dim": 4, "batch_size": 16},
    "dcgan": {"width": 8, "z_dim": 8, "batch_size": 16},
    "wgan-gp": {"width": 8, "z_dim": 8, "batch_size": 16, "n_critic": 2},
    "pixelcnn": {"features": 6, "layers": 2, "levels": 16, "batch_size": 16},
    "realnvp": {"width": 8, "batch_size": 16},
    "glow": {"width": 8, "depth": 2, "batch_size": 16},
    "ddpm": {"width": 8, "steps": 4, "batch_size": 16, "bpd_timesteps": 4},
    "stylegan": {"width": 8, "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "batch_size": 16},
}
POINT_FAMILIES = ["vae", "dcgan", "wgan-gp", "ddpm"]
LIKELIHOOD_FAMILIES = ["vae", "pixelcnn", "realnvp", "glow", "ddpm"]
CPU = {"device": "cpu"}


def random_images(shape: tuple[int, int, int], n: int = 24, seed: int = 0) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)
    y = torch.arange(n) % 3
    return ImageDataset("random", "images", Split(x, y), Split(x[:8], y[:8]), num_classes=3)


def ring_points(n: int = 256) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    comp = torch.randint(0, 8, (n,), generator=g)
    angle = comp * (2 * math.pi / 8)
    x = torch.stack([angle.cos(), angle.sin()], 1) + 0.01 * torch.randn(n, 2, generator=g)
    return ImageDataset("ring", "points", Split(x, comp), Split(x[:32], comp[:32]), 8)


def make(name: str, data: ImageDataset, **options):
    return build_model(resolve_model(name), data, {**CPU, **TINY.get(name, {}), **options})


def fit(model, data: ImageDataset, steps: int, seed: int = 0) -> list[float]:
    losses: list[float] = []
    calls: list[int] = []

    def progress(step: int, metrics: dict[str, float]) -> None:
        calls.append(step)
        losses.append(metrics["loss"])

    spent = model.fit(data, Budget(steps), seed=seed, progress=progress)
    assert spent.steps == steps and calls == list(range(1, steps + 1))
    assert spent.seconds >= 0
    return losses


def draw(model, n: int = 5, seed: int = 123, batch_size: int = 3) -> torch.Tensor:
    return model.sample(n, generator=torch.Generator().manual_seed(seed), batch_size=batch_size)


def roundtrip(sd: dict) -> dict:
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    return load_dataset("digits")


# ---------------------------------------------------------------------------- contract


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)], ids=["8x8x1", "32x32x3"])
@pytest.mark.parametrize("name", list(TINY))
def test_fit_and_sample_images(name: str, shape: tuple[int, int, int]) -> None:
    data = random_images(shape)
    model = make(name, data)
    losses = fit(model, data, steps=2)
    assert all(math.isfinite(v) for v in losses)
    n = 1 if name == "pixelcnn" and shape[0] == 3 else 5  # 3072 sequential evaluations
    x = draw(model, n=n, batch_size=3)
    assert x.dtype == torch.uint8 and tuple(x.shape) == (n, *shape)
    assert x.device.type == "cpu"


@pytest.mark.parametrize("name", ["vae", "dcgan", "ddpm", "realnvp", "glow"])
def test_28x28_is_padded_and_cropped(name: str) -> None:
    data = random_images((1, 28, 28), n=8)
    model = make(name, data)
    fit(model, data, steps=1)
    assert tuple(draw(model, n=2).shape) == (2, 1, 28, 28)


@pytest.mark.parametrize("name", POINT_FAMILIES)
def test_point_datasets(name: str) -> None:
    data = ring_points()
    model = make(name, data, batch_size=32)
    fit(model, data, steps=3)
    x = draw(model, n=7)
    assert x.dtype == torch.float32 and tuple(x.shape) == (7, 2)
    assert torch.isfinite(x).all()


@pytest.mark.parametrize("name", ["pixelcnn", "realnvp", "glow"])
def test_image_only_families_reject_points(name: str) -> None:
    with pytest.raises(UserError):
        make(name, ring_points())


@pytest.mark.parametrize("name", list(TINY))
def test_determinism_and_checkpoint_roundtrip(name: str) -> None:
    data = random_images((1, 8, 8))
    a, b = make(name, data), make(name, data)
    fit(a, data, steps=3, seed=7)
    fit(b, data, steps=3, seed=7)
    sa, sb = a.state_dict(), b.state_dict()
    flat_a, flat_b = _flatten(sa), _flatten(sb)
    assert flat_a.keys() == flat_b.keys()
    for k, v in flat_a.items():
        assert torch.equal(v, flat_b[k]) if torch.is_tensor(v) else v == flat_b[k], k
    samples = draw(a)
    torch.manual_seed(999)  # the global RNG must not matter
    assert torch.equal(samples, draw(a))
    assert torch.equal(samples, draw(b))
    fresh = make(name, data)
    fresh.load_state_dict(roundtrip(sa))
    assert torch.equal(samples, draw(fresh))
    assert not torch.equal(samples, draw(a, seed=124))


def _flatten(sd: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in sd.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def poisoned(state):
    """A state dict with every float tensor NaN: a diverged model."""
    if isinstance(state, dict):
        return {k: poisoned(v) for k, v in state.items()}
    if isinstance(state, torch.Tensor) and state.is_floating_point():
        return torch.full_like(state, float("nan"))
    return state


@pytest.mark.parametrize("name", list(TINY))
def test_a_diverged_model_is_refused_not_quantized_to_black(name: str, digits) -> None:
    """Casting to uint8 turns NaN into 0 (all-black samples that were scored as the model's,
    #34 item 4); a categorical over NaN logits picks an arbitrary level."""
    model = make(name, digits)
    model.fit(digits, Budget(0), seed=0, progress=lambda step, values: None)
    model.load_state_dict(poisoned(model.state_dict()))
    with pytest.raises(UserError, match=r"contain NaN or inf \(\d+ of \d+ values\)"):
        draw(model)


def test_different_seeds_differ() -> None:
    data = random_images((1, 8, 8))
    a, b = make("dcgan", data), make("dcgan", data)
    fit(a, data, steps=2, seed=0)
    fit(b, data, steps=2, seed=1)
    assert not torch.equal(draw(a), draw(b))


def test_checkpoint_with_other_options_is_refused() -> None:
    data = random_images((1, 8, 8))
    sd = roundtrip(make("vae", data).state_dict())
    with pytest.raises(UserError, match="other options"):
        make("vae", data, width=16).load_state_dict(sd)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_a_gpu_is_a_user_error() -> None:
    with pytest.raises(UserError, match="CUDA"):
        make("ddpm", random_images((1, 8, 8)), device="cuda")


def test_seconds_budget_stops_early() -> None:
    data = random_images((1, 8, 8))
    model = make("vae", data)
    spent = model.fit(data, Budget(steps=10**6, seconds=0.3), seed=0, progress=lambda s, m: None)
    assert 0 < spent.steps < 10**6 and spent.seconds < 5


# ---------------------------------------------------------------------------- learning


@pytest.fixture(scope="module")
def trained(digits: ImageDataset) -> dict[str, tuple[object, list[float]]]:
    """Each likelihood family briefly trained on digits (small widths)."""
    options = {
        "vae": {"width": 16, "batch_size": 32},
        "pixelcnn": {"features": 12, "layers": 3, "batch_size": 32},
        "realnvp": {"width": 12, "batch_size": 32},
        "glow": {"width": 16, "depth": 2, "batch_size": 32},
        "ddpm": {"width": 8, "batch_size": 32, "bpd_timesteps": 10},
    }
    out = {}
    for name, opts in options.items():
        model = build_model(resolve_model(name), digits, {**CPU, **opts})
        out[name] = (model, fit(model, digits, steps=100))
    return out


@pytest.mark.parametrize("name", LIKELIHOOD_FAMILIES)
def test_training_loss_goes_down(trained, name: str) -> None:
    _, losses = trained[name]
    early, late = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert late < 0.9 * early, (early, late)


@pytest.mark.parametrize("name", LIKELIHOOD_FAMILIES)
def test_bits_per_dim_beats_uniform(trained, digits: ImageDataset, name: str) -> None:
    model, _ = trained[name]
    x = digits.test.x[:64]
    bpd = model.bits_per_dim(x)
    assert math.isfinite(bpd) and 0 < bpd < 8, bpd
    nats = model.log_prob(x)
    assert nats.shape == (64,) and torch.isfinite(nats).all()
    assert abs(-nats.mean().item() / (64 * math.log(2)) - bpd) < 1e-4


def test_pixelcnn_bits_per_dim_is_exact_for_untrained_uniform_output() -> None:
    """A zeroed output layer gives uniform levels: 8 bits per dim whatever `levels` is."""
    data = random_images((3, 8, 8), n=4)
    for levels in (256, 16):
        model = make("pixelcnn", data, levels=levels)
        last = model.net.head[-1]
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
        assert model.bits_per_dim(data.train.x) == pytest.approx(8.0, abs=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
def test_pixelcnn_is_causal_without_blind_spot(channels: int) -> None:
    from baselines.pixelcnn import GatedPixelCNN

    torch.manual_seed(0)
    H = W = 5
    net = GatedPixelCNN(channels, 3, 6, 3, 5, 3).double()
    order = lambda c, i, j: (i, j, c)  # noqa: E731  (raster order, then channels)
    for c, i, j in [(channels - 1, 2, 2), (0, 2, 2), (0, 0, 0), (channels - 1, 4, 0)]:
        x = torch.randn(1, channels, H, W, dtype=torch.double, requires_grad=True)
        net(x)[0, c, :, i, j].sum().backward()
        seen = x.grad[0].abs() > 0
        for cc in range(channels):
            for ii in range(H):
                for jj in range(W):
                    before = order(cc, ii, jj) < order(c, i, j)
                    assert not (seen[cc, ii, jj] and not before), (c, i, j, cc, ii, jj)
                    near = i - ii <= 2 and abs(j - jj) <= 2
                    assert not (before and near and not seen[cc, ii, jj]), (c, i, j, cc, ii, jj)


def test_pixelcnn_logits_at_one_pixel_match_the_full_pass() -> None:
    from baselines.pixelcnn import GatedPixelCNN

    torch.manual_seed(0)
    net = GatedPixelCNN(3, 5, 6, 2, 5, 3)
    x = torch.randn(2, 3, 4, 5)
    full = net(x)
    for i, j in [(0, 0), (1, 3), (3, 4)]:
        assert torch.allclose(net(x, at=(i, j)), full[..., i, j], atol=1e-6)


def test_realnvp_flow_inverts_and_log_det_matches_jacobian() -> None:
    from baselines.realnvp import Flow

    torch.manual_seed(0)
    flow = Flow((1, 4, 4), scales=2, width=4, blocks=1).double()
    for p in flow.parameters():
        p.data.normal_(0, 0.1)
    x = torch.randn(1, 1, 4, 4, dtype=torch.double)
    zs, logdet = flow(x)
    assert torch.allclose(flow.inverse(zs), x, atol=1e-10)
    jac = torch.autograd.functional.jacobian(
        lambda v: torch.cat([z.flatten() for z in flow(v.view(1, 1, 4, 4))[0]]), x.flatten()
    )
    assert logdet.item() == pytest.approx(torch.linalg.slogdet(jac)[1].item(), abs=1e-8)


def test_ddpm_sampler_options_and_nfe() -> None:
    data = random_images((1, 8, 8))
    ddim = make("ddpm", data, steps=None)
    assert ddim.nfe == 50 and ddim.sample_options == {"sampler": "ddim", "steps": 50, "eta": 0.0}
    anc = make("ddpm", data, sampler="ancestral", steps=None, T=100)
    assert anc.nfe == 100 and anc.sample_options == {"sampler": "ancestral", "steps": 100}
    for options in ({"sampler": "ancestral"}, {"eta": 1.0}, {"schedule": "cosine"}):
        model = make("ddpm", data, **options)
        fit(model, data, steps=1)
        x = draw(model)
        assert x.dtype == torch.uint8 and torch.equal(x, draw(model))
    with pytest.raises(UserError):
        make("ddpm", data, sampler="euler")


@pytest.mark.parametrize(
    "name, options",
    [
        ("ddpm", {"sampler": "ancestral", "steps": 3, "eta": 0.5, "bpd_timesteps": 2}),
        ("vae", {"sample_mode": "sample", "elbo_samples": 2}),
        ("realnvp", {"temperature": 0.7}),
        ("glow", {"temperature": 0.7}),
        ("stylegan", {"truncation": 0.5, "noise": "const"}),
    ],
)
def test_sample_options_reuse_a_trained_model(name: str, options: dict) -> None:
    """The runner trains once for all values of SAMPLE_OPTIONS: checkpoints must load."""
    assert set(options) <= set(resolve_model(name).SAMPLE_OPTIONS)
    data = random_images((1, 8, 8))
    trained = make(name, data)
    fit(trained, data, steps=1)
    other = make(name, data, **options)
    other.load_state_dict(roundtrip(trained.state_dict()))
    assert draw(other).shape == (5, 1, 8, 8)


def test_every_swept_option_is_recorded_even_left_at_its_default() -> None:
    """The report's sweeps read a row's option value from its suite entry, else from the
    model's sample_options: a swept option missing there left the default row out of its
    sweep (glow's T = 1 was)."""
    classes = {n: resolve_model(n) for n in model_names() if ":" not in n}
    swept = {n: cls.SWEEP_OPTIONS for n, cls in classes.items() if hasattr(cls, "SWEEP_OPTIONS")}
    assert {"glow", "stylegan", "cddpm"} <= set(swept)
    data = random_images((1, 8, 8))
    for name, options in swept.items():
        assert set(options) <= set(make(name, data).sample_options), name


# ---------------------------------------------------------------------------- references


def _sanity(name: str, data: ImageDataset, **options):
    model = build_model(resolve_model(name), data, options)
    model.fit(data, Budget(0), seed=0, progress=lambda s, m: None)
    return model


def test_noisy_copier_is_copier_plus_noise(digits: ImageDataset) -> None:
    base = draw(_sanity("copier", digits), n=200, batch_size=64).float()
    same = draw(_sanity("noisy-copier", digits, std=0.0), n=200, batch_size=64).float()
    assert torch.equal(base, same)
    noisy = draw(_sanity("noisy-copier", digits, std=10.0), n=200, batch_size=64).float()
    inside = (base > 40) & (base < 215)  # away from the clipping at 0 and 255
    diff = (noisy - base)[inside]
    assert diff.std().item() == pytest.approx(10.0, rel=0.1)
    assert abs(diff.mean().item()) < 1.0


@pytest.mark.parametrize(
    "options, kept",
    [({"keep_classes": [1, 3]}, {1, 3}), ({"drop": 3}, set(range(7))), ({}, set(range(5)))],
)
def test_class_dropper_keeps_only_some_classes(digits: ImageDataset, options, kept) -> None:
    x = draw(_sanity("class-dropper", digits, **options), n=300, batch_size=64)
    train = digits.train.x.flatten(1)
    match = (x.flatten(1)[:, None] == train[None]).all(-1)
    labels = {int(digits.train.y[row.nonzero()[0, 0]]) for row in match}
    assert match.any(1).all() and labels == kept


def test_class_dropper_needs_labels() -> None:
    data = random_images((1, 8, 8))
    data = ImageDataset("nolabels", "images", Split(data.train.x), Split(data.test.x))
    with pytest.raises(UserError, match="labels"):
        _sanity("class-dropper", data)


def test_mixture_samples_and_roundtrip(digits: ImageDataset) -> None:
    model = _sanity("mixture", digits, n_components=3, n_pca=8)
    x = draw(model, n=50)
    assert x.dtype == torch.uint8 and tuple(x.shape) == (50, 1, 8, 8)
    # about the data's mean image: far closer than uniform noise would be
    assert (x.float().mean(0) - digits.train.x.float().mean(0)).abs().mean() < 20
    fresh = build_model(resolve_model("mixture"), digits, {})
    fresh.load_state_dict(roundtrip(model.state_dict()))
    assert torch.equal(x, draw(fresh, n=50))
    points = _sanity("mixture", ring_points(), n_components=8)
    p = draw(points, n=20)
    assert p.dtype == torch.float32 and tuple(p.shape) == (20, 2)


def test_point_scaler_reaches_its_target_std_and_inverts() -> None:
    from baselines.layers import PointScaler

    x = ring_points().train.x * 5 + 2
    scaler = PointScaler(2, target_std=3.0)
    scaler.fit(x)
    z = scaler(x)
    assert torch.allclose(z.mean(0), torch.zeros(2), atol=1e-4)
    assert torch.allclose(z.std(0), torch.full((2,), 3.0), atol=1e-4)
    assert torch.allclose(scaler.inverse(z), x, atol=1e-4)
