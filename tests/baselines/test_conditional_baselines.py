"""Class-conditional baselines (cdcgan, acgan, cddpm, cvae): the conditional plug-in contract,
determinism, checkpoints, classifier-free guidance, and that samples follow their labels."""

from __future__ import annotations

import io
import math

import pytest
import torch

from baselines.cddpm import drop_labels
from baselines.layers import to_uint8
from bench.data import ImageDataset, Split, load_dataset
from bench.errors import UserError
from bench.features.classifier import load_classifier
from bench.models import Budget, build_model, model_names, resolve_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAMILIES = ["cdcgan", "acgan", "cddpm", "cvae"]
TINY = {
    "cdcgan": {"width": 8, "z_dim": 8, "batch_size": 16},
    "acgan": {"width": 8, "z_dim": 8, "batch_size": 16},
    "cddpm": {"width": 8, "steps": 4, "batch_size": 16},
    "cvae": {"width": 8, "z_dim": 4, "batch_size": 16},
}
K = 3  # classes of the random datasets
CPU = {"device": "cpu"}


def random_images(shape: tuple[int, ...] = (1, 8, 8), n: int = 24, seed: int = 0) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)
    y = torch.arange(n) % K
    return ImageDataset("random", "images", Split(x, y), Split(x[:8], y[:8]), num_classes=K)


def make(name: str, data: ImageDataset, **options):
    options = {**CPU, "num_classes": data.num_classes, **TINY[name], **options}
    return build_model(resolve_model(name), data, options)


def fit(model, data: ImageDataset, steps: int, seed: int = 0) -> list[float]:
    losses: list[float] = []
    spent = model.fit(
        data, Budget(steps), seed=seed, progress=lambda s, m: losses.append(m["loss"])
    )
    assert spent.steps == steps == len(losses)
    return losses


def draw(model, labels: torch.Tensor, seed: int = 123, batch_size: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return model.sample(len(labels), labels=labels, generator=generator, batch_size=batch_size)


def roundtrip(sd: dict) -> dict:
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


LABELS = torch.tensor([0, 1, 2, 0, 2], dtype=torch.int64)


@pytest.fixture(scope="module")
def digits() -> ImageDataset:
    return load_dataset("digits")


# ---------------------------------------------------------------------------- contract


def test_families_are_registered_and_conditional() -> None:
    assert set(FAMILIES) <= set(model_names())
    for name in FAMILIES:
        model = make(name, random_images())
        assert model.num_classes == K


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (1, 28, 28)], ids=str)
@pytest.mark.parametrize("name", FAMILIES)
def test_fit_and_sample_images(name: str, shape: tuple[int, int, int]) -> None:
    data = random_images(shape)
    model = make(name, data)
    assert all(math.isfinite(v) for v in fit(model, data, steps=2))
    x = draw(model, LABELS)
    assert x.dtype == torch.uint8 and tuple(x.shape) == (len(LABELS), *shape)
    assert x.device.type == "cpu"


@pytest.mark.parametrize("name", FAMILIES)
def test_determinism_and_checkpoint_roundtrip(name: str) -> None:
    data = random_images()
    a, b = make(name, data), make(name, data)
    fit(a, data, steps=3, seed=7)
    fit(b, data, steps=3, seed=7)
    samples = draw(a, LABELS)
    torch.manual_seed(999)  # the global RNG must not matter
    assert torch.equal(samples, draw(a, LABELS))
    assert torch.equal(samples, draw(b, LABELS))
    fresh = make(name, data)
    fresh.load_state_dict(roundtrip(a.state_dict()))
    assert torch.equal(samples, draw(fresh, LABELS))
    assert not torch.equal(samples, draw(a, LABELS, seed=124))
    other_seed = make(name, data)
    fit(other_seed, data, steps=3, seed=8)
    assert not torch.equal(samples, draw(other_seed, LABELS))


@pytest.mark.parametrize("name", FAMILIES)
def test_labels_change_the_samples(name: str) -> None:
    data = random_images()
    model = make(name, data)
    fit(model, data, steps=3)
    zeros, ones = torch.zeros(5, dtype=torch.int64), torch.ones(5, dtype=torch.int64)
    assert not torch.equal(draw(model, zeros), draw(model, ones))


@pytest.mark.parametrize("name", FAMILIES)
def test_checkpoint_with_other_num_classes_is_refused(name: str) -> None:
    data = random_images()
    sd = roundtrip(make(name, data).state_dict())
    assert sd["config"]["num_classes"] == K
    with pytest.raises(UserError, match="num_classes"):
        make(name, data, num_classes=K + 1).load_state_dict(sd)


@pytest.mark.parametrize("name", FAMILIES)
def test_bad_input_is_a_user_error(name: str) -> None:
    data = random_images()
    points = ImageDataset(
        "pts",
        "points",
        Split(torch.randn(8, 2), torch.arange(8) % 2),
        Split(torch.randn(4, 2)),
        num_classes=2,
    )
    with pytest.raises(UserError, match="images"):
        make(name, points)
    for bad in (0, -1, 2.5, None):
        with pytest.raises(UserError, match="num_classes"):
            make(name, data, num_classes=bad)
    model = make(name, data)
    unlabelled = ImageDataset("nolabels", "images", Split(data.train.x), Split(data.test.x))
    out_of_range = ImageDataset(
        "many", "images", Split(data.train.x, torch.arange(24)), Split(data.test.x), num_classes=24
    )
    for bad_data in (unlabelled, out_of_range):
        with pytest.raises(UserError, match="labels"):
            model.fit(bad_data, Budget(1), seed=0, progress=lambda s, m: None)
    for labels in (
        torch.tensor([0, 1, 3, 0, 0]),
        torch.tensor([0, 1, -1, 0, 0]),
        torch.zeros(4, dtype=torch.int64),
        torch.zeros(5),
    ):
        with pytest.raises(UserError, match="labels"):
            model.sample(5, labels=labels, generator=torch.Generator(), batch_size=3)


def test_projection_discriminator_is_psi_plus_projection() -> None:
    data = random_images()
    model = make("cdcgan", data)
    fit(model, data, steps=2)
    D = model.D.eval()
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        phi = D.phi(x).flatten(1)
        expected = (
            phi @ D.psi.weight.flatten(1).T
            + D.psi.bias
            + (D.embed.weight[y] * phi).sum(1, keepdim=True)
        )
        assert torch.allclose(D(x, y), expected.flatten(), atol=1e-5)


def test_auxiliary_discriminator_has_a_source_and_a_class_head() -> None:
    data = random_images()
    model = make("acgan", data)
    fit(model, data, steps=2)
    D = model.D.eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        source, classes = D(x)
        phi = D.phi(x).flatten(1)
        assert torch.allclose(source, (phi @ D.source.weight.flatten(1).T + D.source.bias)[:, 0])
        assert torch.allclose(classes, phi @ D.classes.weight.T + D.classes.bias, atol=1e-6)
    assert classes.shape == (4, K)


def test_acgan_class_head_learns_only_with_aux_weight() -> None:
    data = random_images()
    heads = {}
    for weight in (0.0, 1.0):
        model = make("acgan", data, aux_weight=weight)
        start = model.D.classes.weight.detach().clone()
        fit(model, data, steps=3)
        heads[weight] = torch.equal(start, model.D.classes.weight.detach())
    assert heads == {0.0: True, 1.0: False}


@pytest.mark.parametrize("bad", [-1.0, float("nan"), True, "big"])
def test_acgan_bad_aux_weight(bad) -> None:
    with pytest.raises(UserError, match=r"^acgan: aux_weight must be a number >= 0"):
        make("acgan", random_images(), aux_weight=bad)


# ---------------------------------------------------------------------------- cddpm


def test_label_dropout_uses_the_null_class_with_probability_p_uncond() -> None:
    y = torch.arange(200_000) % 10
    p = 0.1
    out = drop_labels(y, p, 10, torch.Generator().manual_seed(0))
    dropped = out == 10
    sd = math.sqrt(p * (1 - p) / len(y))
    assert abs(dropped.float().mean().item() - p) < 5 * sd
    assert torch.equal(out[~dropped], y[~dropped])
    # independent of the label: every class is dropped at the same rate
    rates = torch.stack([dropped[y == c].float().mean() for c in range(10)])
    assert (rates - p).abs().max() < 5 * math.sqrt(p * (1 - p) / 20_000)
    assert torch.equal(out, drop_labels(y, p, 10, torch.Generator().manual_seed(0)))
    assert torch.equal(drop_labels(y, 0.0, 10, torch.Generator().manual_seed(0)), y)


def test_training_trains_the_null_class_only_with_label_dropout() -> None:
    data = random_images()
    rows = {}
    for p in (0.0, 0.5):
        model = make("cddpm", data, p_uncond=p, guidance=0.0)
        start = model.net.label_embed.weight.detach().clone()
        fit(model, data, steps=3)
        end = model.net.label_embed.weight.detach()
        rows[p] = (torch.equal(start[K], end[K]), torch.equal(start[:K], end[:K]))
    assert rows[0.0] == (True, False)  # no dropout: the null row never gets a gradient
    assert rows[0.5] == (False, False)


@pytest.fixture(scope="module")
def tiny_cddpm():
    data = random_images()
    model = make("cddpm", data)
    fit(model, data, steps=5)
    return data, model.state_dict()


def _cddpm(tiny_cddpm, **options):
    data, sd = tiny_cddpm
    model = make("cddpm", data, **options)
    model.load_state_dict(roundtrip(sd))
    return model


def test_guidance_zero_is_the_conditional_model(tiny_cddpm) -> None:
    model = _cddpm(tiny_cddpm, guidance=0.0)
    assert model.nfe == 4
    y = LABELS
    with torch.inference_mode():
        conditional = model._sample_batch(
            lambda x, t: model.ema(x, t, y), len(y), torch.Generator().manual_seed(5)
        )
    assert torch.equal(draw(model, y, seed=5, batch_size=len(y)), to_uint8(conditional))


def test_guided_eps_is_the_classifier_free_combination(tiny_cddpm) -> None:
    model = _cddpm(tiny_cddpm, guidance=2.0)
    assert model.nfe == 8 and model.sample_options["guidance"] == 2.0
    net = model.ema.eval()
    x, t, y = torch.randn(5, 1, 8, 8), torch.tensor([999, 500, 10, 0, 250]), LABELS
    with torch.no_grad():
        cond, null = net(x, t, y), net(x, t, torch.full_like(y, K))
        assert not torch.allclose(cond, null)
        guided = model.guided_eps(net, y)(x, t)
    assert torch.allclose(guided, 3.0 * cond - 2.0 * null, atol=1e-5)


def test_guidance_changes_the_samples_of_one_trained_model(tiny_cddpm) -> None:
    samples = {w: draw(_cddpm(tiny_cddpm, guidance=w), LABELS) for w in (0.0, 1.0, 3.0)}
    assert not torch.equal(samples[0.0], samples[1.0])
    assert not torch.equal(samples[1.0], samples[3.0])


@pytest.mark.parametrize(
    "name, options",
    [
        ("cddpm", {"guidance": 2.0, "steps": 3, "sampler": "ancestral"}),
        ("cddpm", {"guidance": 0.5, "eta": 1.0}),
        ("cvae", {"sample_mode": "sample"}),
    ],
)
def test_sample_options_reuse_a_trained_model(name: str, options: dict) -> None:
    assert set(options) <= set(resolve_model(name).SAMPLE_OPTIONS)
    data = random_images()
    trained = make(name, data)
    fit(trained, data, steps=1)
    other = make(name, data, **options)
    other.load_state_dict(roundtrip(trained.state_dict()))
    x = draw(other, LABELS)
    assert x.shape == (5, 1, 8, 8) and torch.equal(x, draw(other, LABELS))
    assert not torch.equal(x, draw(trained, LABELS))


def test_cddpm_bad_options() -> None:
    data = random_images()
    for options in (
        {"p_uncond": 1.0},
        {"guidance": -1.0},
        {"sampler": "euler"},
        {"steps": 0},
        {"p_uncond": 0.0, "guidance": 1.0},
    ):
        with pytest.raises(UserError, match="cddpm"):
            make("cddpm", data, **options)
    assert make("cddpm", data, p_uncond=0.0, guidance=0.0).nfe == 4


# ---------------------------------------------------------------------------- learning

# Steps per family for the label check: default architectures (cddpm sampled with 20 DDIM
# steps, three times), each under a minute on one busy thread.
QUALITY_STEPS = {"cdcgan": 300, "acgan": 300, "cddpm": 300, "cvae": 300}
QUALITY_OPTIONS = {"cddpm": {"steps": 20}}


def conditional_accuracy(model, digits: ImageDataset) -> float:
    labels = torch.arange(500) % digits.num_classes
    x = draw(model, labels, seed=1, batch_size=250)
    predicted = torch.as_tensor(load_classifier(digits).predict(x))
    return (predicted == labels).float().mean().item()


@pytest.mark.parametrize("name", FAMILIES)
def test_samples_are_classified_as_their_labels(digits: ImageDataset, name: str) -> None:
    """The shipped digits classifier reads the asked labels back well above chance (0.1)."""
    model = build_model(
        resolve_model(name), digits, {**CPU, "num_classes": 10, **QUALITY_OPTIONS.get(name, {})}
    )
    losses = fit(model, digits, steps=QUALITY_STEPS[name])
    assert all(math.isfinite(v) for v in losses)
    accuracy = conditional_accuracy(model, digits)
    print(f"{name}: conditional accuracy {accuracy:.3f} after {QUALITY_STEPS[name]} steps")
    assert accuracy > 0.5, accuracy
    if name == "cddpm":  # guidance, at the same trained state, makes the labels clearer
        model.guidance = 0.0
        unguided = conditional_accuracy(model, digits)
        model.guidance = 2.0
        guided = conditional_accuracy(model, digits)
        print(f"cddpm: w=0 {unguided:.3f}, w=1 {accuracy:.3f}, w=2 {guided:.3f}")
        assert guided > unguided + 0.05, (unguided, guided)
