"""LPIPS-VGG16 (bench.features.lpips_vgg16) from random VGG16 weights saved in torchvision's
layout: against the lpips package with its backbone loaded from the same weights, as the
distance of perceptual path length against torchmetrics' perceptual_path_length, and as the
translation metric `lpips` against the references and a direct lpips-package computation.
Nothing is downloaded: the lpips package's own lin layers ship in its wheel."""

from __future__ import annotations

import lpips
import numpy as np
import pytest
import torch
from conftest import run_cli
from test_ppl import TINY, TorchmetricsGenerator, Toy, gen
from torch import nn

from bench.data import load_dataset
from bench.errors import UserError
from bench.features.lpips_vgg16 import SLICES, load_lpips, preprocess, vgg16_template, vgg16_weights
from bench.metrics.ppl import filtered_mean, path_distances, score_ppl_lpips
from bench.models import Budget, build_model, resolve_model
from bench.scoring import ScoringContext, score, weights_network
from bench.translation.translate import translate_sources


def random_vgg16_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision's VGG16 names and shapes; the convolutions He-initialized at random (what
    LPIPS uses), the classifier's 120M unused weights one zero each (stride 0, as
    torch.save keeps it, so the file stays small)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, meta in vgg16_template().items():
        shape = tuple(meta.shape)
        if k.startswith("features.") and k.endswith(".weight"):
            fan_in = shape[1] * shape[2] * shape[3]
            state[k] = torch.randn(shape, generator=g) * (2 / fan_in) ** 0.5
        elif k.startswith("features."):
            state[k] = 0.1 * torch.randn(shape, generator=g)
        else:
            state[k] = torch.zeros(()).expand(shape)
    return state


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vgg16") / "vgg16-397923af.pth"
    torch.save(random_vgg16_state(), path)
    return path


@pytest.fixture(scope="module")
def reference(vgg16_file):
    """lpips.LPIPS(net='vgg') with its calibrated lin layers and, as its trunk, the file's
    features.N mapped into its slices (lpips/pretrained_networks.py vgg16 keeps torchvision's
    index N in slice k's module names: net.slice{k}.{N})."""
    net = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
    state = torch.load(vgg16_file, weights_only=True)
    trunk = {}
    for k, (start, stop) in enumerate(SLICES, 1):
        for i in range(start, stop):
            for p in ("weight", "bias"):
                if f"features.{i}.{p}" in state:
                    trunk[f"net.slice{k}.{i}.{p}"] = state[f"features.{i}.{p}"]
    result = net.load_state_dict(trunk, strict=False)
    assert not result.unexpected_keys and len(trunk) == 26  # 13 convolutions
    assert all(k.startswith(("lin", "scaling_layer")) for k in result.missing_keys)
    return net


def images(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8))


@pytest.mark.parametrize("shape", [(5, 1, 28, 28), (4, 1, 8, 8), (3, 3, 32, 32), (2, 3, 64, 64)])
def test_equals_the_lpips_package_on_the_same_input(vgg16_file, reference, shape):
    x0, x1 = preprocess(images(0, shape)), preprocess(images(1, shape))
    assert x0.shape[1:] == (3, max(64, shape[2]), max(64, shape[3]))
    ours = load_lpips(str(vgg16_file)).network(x0, x1)
    with torch.no_grad():
        theirs = reference(x0, x1).flatten()
    assert ours.shape == (shape[0],) and (ours > 0).all()
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_the_registered_networks_embedding_distance_is_lpips(vgg16_file):
    """The extractor registry's loader (provenance: the file and its sha256) gives the
    embedding whose squared distances are LPIPS."""
    from bench.features import resolve_extractor

    ext = resolve_extractor("lpips_vgg16").load(None, torch.device("cpu"), vgg16_file)
    assert ext.provenance["lpips_vgg16_weights"] == str(vgg16_file)
    x0, x1 = images(2, (3, 1, 28, 28)), images(3, (3, 1, 28, 28))
    e0, e1 = torch.from_numpy(ext.features(x0)), torch.from_numpy(ext.features(x1))
    expected = load_lpips(str(vgg16_file)).distance(x0, x1)
    torch.testing.assert_close((e0 - e1).square().sum(1), expected, rtol=1e-5, atol=0)


def test_preprocess_maps_uint8_to_minus_one_one_and_upsamples_bilinearly():
    x = torch.tensor([[[[0, 255], [255, 0]]]], dtype=torch.uint8)
    out = preprocess(x)
    assert out.shape == (1, 3, 64, 64) and out.min() == -1 and out.max() == 1
    expected = torch.nn.functional.interpolate(
        torch.tensor([[[[-1.0, 1.0], [1.0, -1.0]]]]), size=(64, 64), mode="bilinear"
    )
    torch.testing.assert_close(out, expected.expand(-1, 3, -1, -1))
    big = torch.rand(1, 3, 80, 70) * 2 - 1
    assert preprocess(big) is big  # large enough: fed as it is


def test_weights_of_another_layout_are_refused(tmp_path):
    state = random_vgg16_state()
    state["features.0.weight"] = torch.zeros(32, 3, 3, 3)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(UserError, match=r"features.0.weight has shape \(32, 3, 3, 3\)"):
        vgg16_weights(tmp_path / "w.pth")
    with pytest.raises(UserError, match="VGG16 weights file .* does not exist"):
        vgg16_weights(tmp_path / "absent.pth")


class LpipsSimNet(nn.Module):
    """torchmetrics' sim_net: our LPIPS of both image batches in [-1, 1]."""

    def __init__(self, distance):
        super().__init__()
        self.distance = distance

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        return self.distance(x0, x1)


@pytest.mark.parametrize("ours, theirs", [("lerp", "lerp"), ("slerp", "slerp_any")])
def test_ppl_in_lpips_equals_torchmetrics(vgg16_file, ours, theirs):
    from torchmetrics.functional.image import perceptual_path_length

    n, toy = 60, Toy(ours)
    lp = load_lpips(str(vgg16_file), "cpu", torch.float64)
    got = filtered_mean(path_distances(toy, lp.distance, n, "end", generator=gen(5), batch_size=16))
    g = gen(5)
    latents = [toy.draw_latents(n, generator=g), toy.draw_latents(n, generator=g)]
    mean, _, _ = perceptual_path_length(
        TorchmetricsGenerator(toy, latents),
        num_samples=n,
        batch_size=16,
        interpolation_method=theirs,
        epsilon=1e-4,
        resize=None,
        lower_discard=0.01,
        upper_discard=0.99,
        sim_net=LpipsSimNet(lp.distance),
    )
    assert got > 0
    assert got == pytest.approx(float(mean), rel=1e-4)


def test_ppl_lpips_columns_on_a_baseline(vgg16_file):
    digits = load_dataset("digits")
    model = build_model(resolve_model("stylegan"), digits, {"device": "cpu", **TINY["stylegan"]})
    ctx = ScoringContext(
        digits,
        digits.train.x[:8],
        torch.device("cpu"),
        model=model,
        batch_size=4,
        weights={"lpips_vgg16": vgg16_file},
    )
    scores = score_ppl_lpips(ctx)
    assert set(scores) == {"ppl_end_lerp_lpips_vgg16", "ppl_full_lerp_lpips_vgg16"}
    assert all(np.isfinite(v) and v > 0 for v in scores.values())
    assert ctx.provenance["lpips_vgg16_weights"] == str(vgg16_file)
    assert len(ctx.provenance["lpips_vgg16_weights_sha256"]) == 64


N = 40


def translation_lpips(task_name: str, model_name: str, weights) -> tuple[dict, torch.Tensor]:
    task = load_dataset(task_name)
    model = build_model(resolve_model(model_name), task, {})
    model.fit(task, Budget(0), seed=0, progress=lambda step, values: None)
    fake = translate_sources(model, task, N, torch.Generator().manual_seed(0), 256)
    ctx = ScoringContext(task, fake, torch.device("cpu"), model=model, weights=weights)
    return score(ctx, ["lpips", "l1"]), fake


def test_translation_lpips_is_zero_for_the_oracle_and_the_lpips_package_for_identity(
    vgg16_file, reference
):
    weights = {"lpips_vgg16": vgg16_file}
    oracle, _ = translation_lpips("edges2mnist", "oracle", weights)
    assert oracle["lpips"] == 0 and oracle["l1"] == 0
    identity, fake = translation_lpips("edges2mnist", "identity", weights)
    targets = load_dataset("edges2mnist").test.x[:N]
    with torch.no_grad():
        direct = reference(preprocess(fake), preprocess(targets)).flatten().double().mean()
    assert identity["lpips"] > 0.01
    assert identity["lpips"] == pytest.approx(float(direct), abs=1e-6)


def test_translation_lpips_skips_unpaired_tasks(vgg16_file):
    scores, _ = translation_lpips("digits2mnist", "identity", {"lpips_vgg16": vgg16_file})
    assert scores == {}  # l1 and lpips: paired metrics


def test_eval_takes_the_vgg16_file_with_weights(tmp_path, vgg16_file):
    """eval's --weights is the --features extractor's file when it takes one, else the file
    of the network a metric loads; without it, one line naming where to put it."""
    assert weights_network("classifier", ["l1", "lpips"]) == "lpips_vgg16"
    assert weights_network("dinov2_vits14", ["lpips"]) == "dinov2_vits14"
    assert weights_network("classifier", ["fd"]) == "classifier"
    task = load_dataset("edges2mnist")
    np.savez(tmp_path / "oracle.npz", images=task.test.x[:N].numpy())
    args = ["eval", "--dataset", "edges2mnist", "--samples", str(tmp_path / "oracle.npz")]
    env = {"TORCH_HOME": str(tmp_path / "torch")}
    res = run_cli(*args, "--metrics", "lpips,l1", "--weights", str(vgg16_file), env=env)
    assert res.returncode == 0 and "lpips: 0\n" in res.stdout, res.stderr
    res = run_cli(*args, "--metrics", "lpips", env=env)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "no VGG16 weights: looked for" in lines[0] and "--weights to eval" in lines[0]
