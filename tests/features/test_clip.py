"""CLIP extractor: a small random-weights CLIP saved as OpenAI publishes it (a TorchScript archive,
fp16 weights), loaded through the real path, against torch-fidelity's CLIP extractor given the
same file and against a transcription of cmmd's preprocessing on torch-fidelity's network."""

import hashlib
import os
import pickle
import warnings
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch_fidelity import feature_extractor_clip as tfc

from bench.errors import UserError
from bench.features import clip, weights_files

SMALL = clip.ClipVitConfig(width=128, layers=2, patch=14, resolution=56, embed_dim=32)


class OpenAIClipLayout(nn.Module):
    """openai/CLIP's CLIP module attributes (torch-fidelity carries its image tower), small."""

    def __init__(self, c: clip.ClipVitConfig):
        super().__init__()
        self.visual = tfc.VisionTransformer(
            c.resolution, c.patch, c.width, c.layers, c.width // 64, c.embed_dim
        )
        self.transformer = tfc.Transformer(64, 1, 1)
        self.token_embedding = nn.Embedding(50, 64)
        self.positional_embedding = nn.Parameter(torch.zeros(8, 64))
        self.ln_final = tfc.LayerNorm(64)
        self.text_projection = nn.Parameter(torch.zeros(64, c.embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(4.6))
        self.register_buffer("input_resolution", torch.tensor(c.resolution))
        self.register_buffer("context_length", torch.tensor(8))
        self.register_buffer("vocab_size", torch.tensor(50))

    def forward(self, x):
        return x + 0


def openai_style_archive(path, c: clip.ClipVitConfig, seed=0):
    torch.manual_seed(seed)
    m = OpenAIClipLayout(c)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith(".weight") and "ln_" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif p.ndim >= 2:
                p.copy_(torch.randn_like(p) * p.shape[-1] ** -0.5)
            else:
                p.copy_(0.1 * torch.randn_like(p))
    tfc.convert_weights(m)  # fp16, as OpenAI's files are
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.trace(m, torch.zeros(1))
        torch.jit.save(scripted, str(path))
    return scripted


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "ViT-L-14-336px.pt"
    scripted = openai_style_archive(path, SMALL)
    return path, scripted


@pytest.fixture(scope="module")
def extractor(archive):
    return clip.load_clip(archive[0], "cpu", config=SMALL)


@pytest.fixture(scope="module")
def peer(archive):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tfc.FeatureExtractorCLIP(
            "clip-vit-l-14-336px", ["clip"], feature_extractor_weights_path=str(archive[0])
        )


def images(seed, n, c, h, w=None):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, h, w or h), dtype=torch.uint8, generator=g)


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_identity_and_provenance(extractor, archive):
    assert extractor.dim == 32 and extractor.resolution == 56
    assert extractor.weights_path == archive[0]
    assert extractor.weights_sha256 == hashlib.sha256(archive[0].read_bytes()).hexdigest()


def test_torchscript_tensors_read_without_jit_equal_jit_load(archive):
    path, scripted = archive
    ours = clip.read_openai_weights(path, "CLIP")
    ref = scripted.state_dict()
    assert sorted(ours) == sorted(ref)
    for k, v in ref.items():
        assert ours[k].dtype == v.dtype and torch.equal(ours[k], v), k


def test_features_equal_torch_fidelity_at_native_size(extractor, peer):
    x = images(0, 4, 3, 56)
    ours = extractor.features(x, batch_size=3)
    with torch.inference_mode():
        theirs = peer(x)[0].numpy()
    assert ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(ours, unit(theirs), atol=1e-5, rtol=0)


def cmmd_preprocess(image_chw, size):
    """cmmd io_util.py (1963839) _read_image/_center_crop_and_resize + the /255 of
    compute_embeddings_for_dir + scenic clip.normalize_image, transcribed."""
    hwc = image_chw.transpose(1, 2, 0)
    im = Image.fromarray(hwc[..., 0] if hwc.shape[-1] == 1 else hwc)
    w, h = im.size
    side = min(w, h)
    top = (h - side) // 2
    left = (w - side) // 2
    im = im.crop((left, top, left + side, top + side)).resize((size, size), resample=Image.BICUBIC)
    x = np.asarray(im).astype(np.float32)
    if x.ndim == 2:
        x = np.tile(x[..., np.newaxis], (1, 1, 3))
    x = x / 255.0
    x = (x - np.array(clip.CLIP_MEAN)) / np.array(clip.CLIP_STD)
    return torch.from_numpy(x.astype(np.float32).transpose(2, 0, 1))


@pytest.mark.parametrize("c,h,w", [(3, 40, 64), (1, 28, 28), (3, 90, 70)])
def test_features_follow_cmmd_preprocessing(extractor, peer, c, h, w):
    x = images(h, 3, c, h, w)
    ref_in = torch.stack([cmmd_preprocess(im, 56) for im in x.numpy()])
    with torch.inference_mode():
        ref = unit(peer.model.visual(ref_in).numpy())
    assert np.abs(ref[0] - ref[1]).max() > 1e-2  # distinct images, distinct embeddings
    np.testing.assert_allclose(extractor.features(x), ref, atol=1e-5, rtol=0)


def test_torch_fidelity_resizes_otherwise(extractor, peer):
    x = images(3, 2, 3, 40)
    with torch.inference_mode():
        theirs = unit(peer(x)[0].numpy())
    assert np.abs(extractor.features(x) - theirs).max() > 1e-2


def test_plain_state_dict_file_gives_the_same_features(tmp_path, archive, extractor):
    torch.save(archive[1].state_dict(), tmp_path / "clip_state.pt")
    other = clip.load_clip(tmp_path / "clip_state.pt", "cpu", config=SMALL)
    x = images(4, 2, 3, 56)
    np.testing.assert_array_equal(other.features(x), extractor.features(x))


def test_wrong_architecture_is_one_line(archive):
    with pytest.raises(UserError) as e:
        clip.load_clip(archive[0], "cpu")
    msg = str(e.value)
    assert "\n" not in msg
    assert "width 128, 2 layers, patch 14, 56px, embedding 32" in msg
    assert "CLIP ViT-L/14@336px needs width 1024, 24 layers, patch 14, 336px, embedding 768" in msg


def test_missing_file_says_which_where_and_how(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(UserError) as e:
        clip.load_clip(device="cpu")
    msg = str(e.value)
    assert "\n" not in msg
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "ViT-L-14-336px.pt") in msg
    assert str(tmp_path / "home" / ".cache" / "clip" / "ViT-L-14-336px.pt") in msg
    assert weights_files.CLIP_URL in msg and "--weights" in msg


def test_default_search_finds_torch_fidelitys_cached_file(monkeypatch, tmp_path, archive):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    target = (
        tmp_path / "hub" / "checkpoints" / f"clip-vit-l-14-336px-{weights_files.CLIP_SHA256}.pt"
    )
    target.parent.mkdir(parents=True)
    target.write_bytes(archive[0].read_bytes())
    assert clip.load_clip(device="cpu", config=SMALL).weights_path == target


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_archive_that_would_run_code_is_refused_unrun(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("evil/data.pkl", pickle.dumps(_RunsCode(marker), protocol=2))
        zf.writestr("evil/constants.pkl", pickle.dumps((), protocol=2))
    with pytest.raises(UserError, match=r"cannot read .*evil.pt .*refusing to load posix\.mkdir"):
        clip.load_clip(path, "cpu", config=SMALL)
    assert not marker.exists()
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="cannot read"):
        clip.load_clip(tmp_path / "junk.pt", "cpu", config=SMALL)


class _TorchScriptModule:
    """Pickled as an archive's module class `__torch__.M` (read back by genbench's
    unpickler, never imported)."""


def _malformed_archive(tmp_path, root_args=(), size=(4,), numel=4, stored=16) -> str:
    """A TorchScript-looking archive whose module holds one tensor `w` of `size` over a
    float32 storage that declares `numel` values and stores `stored` bytes; the module
    class is called with `root_args`."""
    import collections
    import io
    import sys
    import types

    module = types.ModuleType("__torch__")
    _TorchScriptModule.__module__, _TorchScriptModule.__qualname__ = "__torch__", "M"
    module.M = _TorchScriptModule

    class Storage:
        pass

    class Tensor:
        def __reduce__(self):
            rebuild = torch._utils._rebuild_tensor_v2
            return (
                rebuild,
                (Storage(), 0, size, (1,) * len(size), False, collections.OrderedDict()),
            )

    class Root:
        def __reduce__(self):
            return (_TorchScriptModule, root_args, {"w": Tensor()})

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return (
                ("storage", torch.FloatStorage, "0", "cpu", numel)
                if isinstance(obj, Storage)
                else None
            )

    buffer = io.BytesIO()
    sys.modules["__torch__"] = module
    try:
        Pickler(buffer, protocol=2).dump(Root())
    finally:
        del sys.modules["__torch__"]
    path = tmp_path / "bad.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("bad/data.pkl", buffer.getvalue())
        zf.writestr("bad/constants.pkl", pickle.dumps((), protocol=2))
        zf.writestr("bad/data/0", b"\0" * stored)
    return path


def test_a_well_formed_small_archive_reads(tmp_path):
    """The test's archive builder makes what the reader takes: the refusals below are the
    malformations, not the builder."""
    from bench.features.torchscript_weights import read_torchscript_tensors

    tensors = read_torchscript_tensors(_malformed_archive(tmp_path))
    assert list(tensors) == ["w"] and tensors["w"].shape == (4,)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"root_args": (1,)}, "a module class is called with arguments"),
        ({"size": (100,)}, "reaches element 99 of a storage of 4"),
        ({"size": (2, -3)}, "a tensor of size"),
        ({"numel": 2**30, "stored": 16}, "declares 4294967296 bytes"),
        ({"numel": 4, "stored": 64}, "holds 64 bytes, not the 16 of 4 values"),
    ],
    ids=["module-called-with-arguments", "tensor-past-its-storage", "negative-size",
         "storage-of-4-gib", "storage-bigger-than-declared"],
)  # fmt: skip
def test_malformed_torchscript_archives_are_one_line(tmp_path, kwargs, message):
    """#34 item 7: these raised TypeError, RuntimeError or inflated 4 GiB before any check."""
    path = _malformed_archive(tmp_path, **kwargs)
    with pytest.raises(UserError, match=r"cannot read .*bad\.pt as CLIP weights: ") as e:
        clip.read_openai_weights(path, "CLIP")
    assert message in str(e.value)
