"""DINOv2 extractor: a random-weights ViT-S/14 saved in Meta's checkpoint layout, loaded through
the real path, against a transcription of the hub model's forward on dgm-eval's transform, and
against torch-fidelity's FeatureExtractorDinoV2 on the same network."""

import hashlib
import os
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms as TF
from PIL import Image
from torch_fidelity.feature_extractor_dinov2 import FeatureExtractorDinoV2

from bench.errors import UserError
from bench.features import dinov2

DIM, DEPTH, HEADS, MLP = 384, 12, 6, 1536


def official_vits14_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the names and shapes of dinov2_vits14_pretrain.pth (block_chunks=0)."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0, shift=0.0):
        return torch.randn(*shape, generator=g) * scale + shift

    sd = {
        "cls_token": randn(1, 1, DIM),
        "pos_embed": randn(1, 37 * 37 + 1, DIM, scale=0.5),
        "mask_token": randn(1, DIM),
        "patch_embed.proj.weight": randn(DIM, 3, 14, 14, scale=(3 * 14 * 14) ** -0.5),
        "patch_embed.proj.bias": randn(DIM, scale=0.1),
    }
    for i in range(DEPTH):
        p = f"blocks.{i}."
        sd |= {
            p + "norm1.weight": randn(DIM, scale=0.1, shift=1.0),
            p + "norm1.bias": randn(DIM, scale=0.1),
            p + "attn.qkv.weight": randn(3 * DIM, DIM, scale=DIM**-0.5),
            p + "attn.qkv.bias": randn(3 * DIM, scale=0.1),
            p + "attn.proj.weight": randn(DIM, DIM, scale=DIM**-0.5),
            p + "attn.proj.bias": randn(DIM, scale=0.1),
            p + "ls1.gamma": randn(DIM, scale=0.1, shift=0.4),
            p + "norm2.weight": randn(DIM, scale=0.1, shift=1.0),
            p + "norm2.bias": randn(DIM, scale=0.1),
            p + "mlp.fc1.weight": randn(MLP, DIM, scale=DIM**-0.5),
            p + "mlp.fc1.bias": randn(MLP, scale=0.1),
            p + "mlp.fc2.weight": randn(DIM, MLP, scale=MLP**-0.5),
            p + "mlp.fc2.bias": randn(DIM, scale=0.1),
            p + "ls2.gamma": randn(DIM, scale=0.1, shift=0.4),
        }
    sd |= {"norm.weight": randn(DIM, scale=0.1, shift=1.0), "norm.bias": randn(DIM, scale=0.1)}
    return sd


def hub_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """facebookresearch/dinov2 DinoVisionTransformer.forward (eval, no xFormers) transcribed:
    prepare_tokens_with_masks, interpolate_pos_encoding, NestedTensorBlock (Attention, LayerScale,
    Mlp with GELU), final norm, x_norm_clstoken; head is the identity."""
    b, _, w, h = x.shape
    t = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=14)
    t = t.flatten(2).transpose(1, 2)
    t = torch.cat([sd["cls_token"].expand(b, -1, -1), t], dim=1)
    pos = sd["pos_embed"].float()
    n_pos = pos.shape[1] - 1
    m = int(n_pos**0.5)
    w0, h0 = w // 14, h // 14
    patch_pos = F.interpolate(
        pos[:, 1:].reshape(1, m, m, DIM).permute(0, 3, 1, 2),
        scale_factor=((w0 + 0.1) / m, (h0 + 0.1) / m),
        mode="bicubic",
        antialias=False,
    )
    assert (w0, h0) == patch_pos.shape[-2:]
    patch_pos = patch_pos.permute(0, 2, 3, 1).view(1, -1, DIM)
    t = t + torch.cat([pos[:, :1], patch_pos], dim=1)
    n = t.shape[1]
    for i in range(DEPTH):
        p = f"blocks.{i}."
        y = F.layer_norm(t, (DIM,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], eps=1e-6)
        qkv = F.linear(y, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"])
        qkv = qkv.reshape(b, n, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * (DIM // HEADS) ** -0.5, qkv[1], qkv[2]
        y = ((q @ k.transpose(-2, -1)).softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, DIM)
        y = F.linear(y, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        t = t + sd[p + "ls1.gamma"] * y
        y = F.layer_norm(t, (DIM,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], eps=1e-6)
        y = F.gelu(F.linear(y, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"]))
        t = t + sd[p + "ls2.gamma"] * F.linear(y, sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
    t = F.layer_norm(t, (DIM,), sd["norm.weight"], sd["norm.bias"], eps=1e-6)
    return t[:, 0]


def dgm_eval_transform(image_chw: np.ndarray) -> torch.Tensor:
    """dgm-eval d57a6d2: dataloaders.py Image.convert('RGB'), then DINOv2Encoder.transform with
    clean_resize=False."""
    hwc = image_chw.transpose(1, 2, 0)
    img = Image.fromarray(hwc[..., 0] if hwc.shape[-1] == 1 else hwc).convert("RGB")
    imagenet_mean = np.array([0.485, 0.456, 0.406])
    imagenet_std = np.array([0.229, 0.224, 0.225])
    image = TF.Compose([TF.Resize((224, 224), TF.InterpolationMode.BICUBIC), TF.ToTensor()])(img)
    return TF.Normalize(imagenet_mean, imagenet_std)(image)


def images(seed, n, c, size):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, size, size), dtype=torch.uint8, generator=g)


@pytest.fixture(scope="module")
def official_state():
    return official_vits14_state()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory, official_state):
    path = tmp_path_factory.mktemp("dinov2") / "dinov2_vits14_pretrain.pth"
    torch.save(official_state, path)
    return path


@pytest.fixture(scope="module")
def extractor(weights_file):
    return dinov2.load_dinov2("vits14", weights_file, "cpu")


def test_identity_and_provenance(extractor, weights_file):
    assert extractor.name == "dinov2_vits14"
    assert extractor.dim == 384
    assert extractor.weights_path == weights_file
    assert extractor.weights_sha256 == hashlib.sha256(weights_file.read_bytes()).hexdigest()


@pytest.mark.parametrize("c,size", [(3, 32), (1, 28), (3, 250)], ids=["rgb32", "gray28", "rgb250"])
def test_features_equal_hub_model_on_dgm_eval_transform(extractor, official_state, c, size):
    x = images(size, 3, c, size)
    ours = extractor.features(x, batch_size=2)
    ref_in = torch.stack([dgm_eval_transform(im) for im in x.numpy()])
    with torch.inference_mode():
        ref = hub_forward(official_state, ref_in).numpy()
    assert ours.shape == (3, 384) and ours.dtype == np.float32
    assert ref.std() > 0.1  # features that carry signal, not a collapsed network
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)


def torch_fidelity_features(model, x):
    with mock.patch("torch.hub.load", return_value=model):
        peer = FeatureExtractorDinoV2("dinov2-vit-s-14", ["dinov2"])
    with torch.inference_mode():
        return peer(x)[0].numpy()


def test_features_equal_torch_fidelity_at_224(extractor):
    x = images(1, 3, 3, 224)
    np.testing.assert_allclose(
        extractor.features(x), torch_fidelity_features(extractor.model, x), atol=1e-5, rtol=0
    )


def test_resize_follows_dgm_eval_not_torch_fidelity(extractor):
    """Off 224 x 224, torch-fidelity's bilinear resize gives other features."""
    x = images(2, 2, 3, 32)
    diff = np.abs(extractor.features(x) - torch_fidelity_features(extractor.model, x)).max()
    assert diff > 1e-2


def test_default_path_is_the_torch_hub_cache(monkeypatch, tmp_path, weights_file):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    target = tmp_path / "hub" / "checkpoints" / "dinov2_vits14_pretrain.pth"
    assert dinov2.default_weights_path("vits14") == target
    target.parent.mkdir(parents=True)
    target.write_bytes(weights_file.read_bytes())
    ext = dinov2.load_dinov2("vits14", device="cpu")
    assert ext.weights_path == target


def test_missing_file_says_which_where_and_how(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(UserError) as e:
        dinov2.load_dinov2("vitl14", device="cpu")
    msg = str(e.value)
    assert "\n" not in msg
    assert str(tmp_path / "hub" / "checkpoints" / "dinov2_vitl14_pretrain.pth") in msg
    assert "dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth" in msg
    assert "--weights" in msg
    with pytest.raises(UserError, match="does not exist"):
        dinov2.load_dinov2("vits14", tmp_path / "nope.pth", "cpu")


def test_mismatched_weights_are_one_line_errors(tmp_path, weights_file, official_state):
    shape_msg = r"vitb14 weights: cls_token has shape \(1, 1, 384\), expected \(1, 1, 768\)"
    with pytest.raises(UserError, match=shape_msg) as e:
        dinov2.load_dinov2("vitb14", weights_file, "cpu")
    assert "\n" not in str(e.value)
    partial = dict(official_state)
    del partial["blocks.3.ls1.gamma"]
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(UserError, match=r"1 tensors missing \(blocks\.3\.ls1\.gamma\)"):
        dinov2.load_dinov2("vits14", tmp_path / "partial.pth", "cpu")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read .*junk.pth as DINOv2 vits14 weights"):
        dinov2.load_dinov2("vits14", tmp_path / "junk.pth", "cpu")
    with pytest.raises(UserError, match="unknown DINOv2 architecture 'vith14'"):
        dinov2.load_dinov2("vith14", weights_file, "cpu")


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_checkpoint_that_would_run_code_is_refused_unrun(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"cls_token": _RunsCode(marker)}, tmp_path / "evil.pth")
    with pytest.raises(UserError, match="cannot read"):
        dinov2.load_dinov2("vits14", tmp_path / "evil.pth", "cpu")
    assert not marker.exists()


def test_pos_embed_resampled_the_hub_way_not_timms(official_state):
    """The 0.1 offset matters: resampling to a size (timm's way) gives another embedding."""
    ours = dinov2.resample_pos_embed(official_state["pos_embed"], 16)
    by_size = F.interpolate(
        official_state["pos_embed"][:, 1:].reshape(1, 37, 37, DIM).permute(0, 3, 1, 2),
        size=(16, 16),
        mode="bicubic",
    )
    assert ours.shape == (1, 257, DIM)
    assert (ours[:, 1:] - by_size.permute(0, 2, 3, 1).reshape(1, 256, DIM)).abs().max() > 1e-2


@pytest.mark.parametrize("arch", list(dinov2.ARCHS))
def test_official_layout_maps_onto_timm_for_every_size(arch):
    """Names and shapes only (meta tensors): ViT-g/14's SwiGLU w12/w3 included."""
    with torch.device("meta"):
        model = dinov2.build_model(arch)
    official = dinov2.official_template(model)
    assert ("blocks.0.mlp.w12.weight" in official) == (arch == "vitg14")
    assert official["pos_embed"].shape[1] == 37 * 37 + 1
    mapped = dinov2.to_timm(official)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in mapped.items()} == expected
    assert model.num_features == dinov2.ARCHS[arch][1]


def independent_features(state, x: torch.Tensor) -> np.ndarray:
    batch = torch.stack([dgm_eval_transform(img.numpy()) for img in x]).float()
    with torch.no_grad():
        return hub_forward(state, batch).numpy()


def test_eval_in_dinov2_space_equals_the_independent_implementation(
    tmp_path, official_state, weights_file
):
    """`genbench eval --features dinov2_vits14 --weights FILE`: its features equal the
    transcription's to 1e-5, and its FD/KID/PRDC are the metrics of those features."""
    import json

    from conftest import run_cli

    from bench.data import load_dataset
    from bench.imageio import save_npz
    from bench.metrics.fd import frechet_distance
    from bench.metrics.kid import kid
    from bench.metrics.prdc import prdc_metrics
    from bench.scoring import ScoringContext

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(images(7, 40, 3, 16)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i:02d}.png")
    data = load_dataset(f"folder:{folder}")
    fake = images(8, 24, 3, 16)
    save_npz(tmp_path / "fake.npz", fake)
    ctx = ScoringContext(
        data, fake, torch.device("cpu"), features_for=["dinov2_vits14"],
        weights={"dinov2_vits14": weights_file},
    )  # fmt: skip
    ours_fake, ours_train = (
        ctx.features("dinov2_vits14", "fake"),
        ctx.features("dinov2_vits14", "train"),
    )
    ref_fake = independent_features(official_state, fake)
    ref_train = independent_features(official_state, data.train.x)
    np.testing.assert_allclose(ours_fake, ref_fake, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(ours_train, ref_train, atol=1e-5, rtol=1e-5)

    res = run_cli(
        "eval", "--samples", str(tmp_path / "fake.npz"), "--dataset", f"folder:{folder}",
        "--features", "dinov2_vits14", "--weights", str(weights_file),
        "--metrics", "fd,kid,prdc", "--json", "--device", "cpu",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    got = out["metrics"]
    assert got["fd_dinov2_vits14_n24_train"] == pytest.approx(
        frechet_distance(ref_fake, ref_train), rel=1e-4
    )
    assert got["kid_dinov2_vits14_n24"] == pytest.approx(kid(ref_fake, ref_train)[0], rel=1e-4)
    real = ref_train[np.sort(np.random.default_rng(0).choice(len(ref_train), 24, replace=False))]
    expected = prdc_metrics(real, ref_fake, k_pr=3, k_dc=5)
    assert got["precision_dinov2_vits14_k3"] == expected["precision"]
    assert got["coverage_dinov2_vits14_k5"] == expected["coverage"]
    assert (
        out["dinov2_vits14_weights_sha256"] == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    )


def test_eval_without_the_weights_file_is_one_line(tmp_path):
    from conftest import run_cli

    np.savez(tmp_path / "s.npz", np.zeros((4, 1, 8, 8), np.uint8))
    res = run_cli(
        "eval", "--samples", str(tmp_path / "s.npz"), "--dataset", "digits",
        "--features", "dinov2_vitl14", "--metrics", "fd",
        env={"TORCH_HOME": str(tmp_path / "torch")},
    )  # fmt: skip
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "dinov2_vitl14_pretrain.pth" in res.stderr and "Traceback" not in res.stderr


def test_a_run_needs_the_file_only_where_a_metric_loads_it(monkeypatch, tmp_path):
    """bench.plan, before torch loads: a point dataset takes no DINOv2 features; a file in
    `weights:` or in the torch hub cache is found (whether it holds DINOv2 is told later)."""
    from conftest import write_suite

    from bench.plan import plan_suite
    from bench.suite import load_suite

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def check(datasets: str, extra: str = "") -> None:
        path = write_suite(
            tmp_path, "- name: copier\n", datasets=datasets, metrics="[fd_dinov2_vits14]",
            extra=extra,
        )  # fmt: skip
        plan_suite(load_suite(path), tmp_path / "out")

    check("[ring8]")
    with pytest.raises(UserError, match="weights: {dinov2_vits14: PATH}"):
        check("[ring8, digits]")
    (tmp_path / "w.pth").write_bytes(b"")
    check("[digits]", "weights: {dinov2_vits14: w.pth}\n")
    hub = tmp_path / "torch" / "hub" / "checkpoints" / "dinov2_vits14_pretrain.pth"
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"")
    check("[digits]")


def test_preflight_reads_the_weights_file_once_and_takes_the_official_layout(
    tmp_path, weights_file
):
    """Mismatched files are refused in preflight (tests/test_bad_input.py); the official
    layout passes, read once for a suite of two metrics and two models, nothing written."""
    from conftest import write_suite

    from bench.job import RunOptions
    from bench.runner import Runner
    from bench.suite import load_suite

    path = write_suite(
        tmp_path, "- name: copier\n- name: noisy\n  model: noisy-copier\n",
        metrics="[fd_dinov2_vits14, kid_dinov2_vits14]",
        extra=f"weights: {{dinov2_vits14: {weights_file}}}\n",
    )  # fmt: skip
    runner = Runner(load_suite(path), RunOptions(tmp_path / "out"))
    with mock.patch.object(dinov2, "read_state_dict", wraps=dinov2.read_state_dict) as read:
        runner.preflight()
    assert read.call_count == 1
    assert not (tmp_path / "out").exists()


def test_stats_in_dinov2_space_and_a_2048_d_file_refused(tmp_path, weights_file):
    from conftest import run_cli

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(images(9, 12, 3, 16)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i:02d}.png")
    args = ["--features", "dinov2_vits14", "--weights", str(weights_file), "--device", "cpu"]
    res = run_cli("stats", str(folder), "-o", str(tmp_path / "ref.npz"), *args)
    assert res.returncode == 0, res.stderr
    with np.load(tmp_path / "ref.npz") as f:
        assert f["mu"].shape == (384,) and f["sigma"].shape == (384, 384)
    res = run_cli("fid", str(folder), str(tmp_path / "ref.npz"), *args, "--json")
    assert res.returncode == 0, res.stderr
    np.savez(tmp_path / "inception.npz", mu=np.zeros(2048), sigma=np.eye(2048))  # pytorch-fid's
    res = run_cli("fid", str(folder), str(tmp_path / "inception.npz"), *args)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "no genbench protocol record" in res.stderr  # pytorch-fid's: Inception features
    assert "this comparison uses extractor dinov2_vits14" in res.stderr
