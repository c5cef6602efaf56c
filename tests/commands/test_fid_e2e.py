"""fid_between on image folders and .npz files against pytorch-fid's own FID."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_fid import fid_score

from bench.errors import UserError
from bench.features import inception as inc
from bench.fid import fid_between, write_source_stats
from bench.imageio import save_npz

N = 40  # per set: Inception on a shared 2-core CPU is ~0.1-0.3 s per image
BATCH = 20


@pytest.fixture(autouse=True, scope="module")
def no_hub_weights(tmp_path_factory):
    """An empty torch hub, so the offline (converted) weights are used whatever ~/.cache holds."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch-home-empty"))
        yield


def smooth_images(n: int, seed: int, grid: int) -> torch.Tensor:
    """Random colour fields upsampled from grid x grid to 8x8: the sets differ in smoothness."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, grid, grid, 3), dtype=np.uint8)
    fine = [np.asarray(Image.fromarray(c).resize((8, 8), Image.BILINEAR)) for c in coarse]
    return torch.from_numpy(np.stack(fine)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def image_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("fid_sets")
    paths = []
    for name, images in (("a", smooth_images(N, 0, 2)), ("b", smooth_images(N, 1, 8))):
        folder = root / name
        folder.mkdir()
        for i, im in enumerate(images.permute(0, 2, 3, 1).numpy()):
            Image.fromarray(im).save(folder / f"{i:03d}.png")
        save_npz(root / f"{name}.npz", images)
        paths.append(folder)
    return root, paths


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated")  # SciPy 1.17
@pytest.mark.filterwarnings("ignore:Matrix is singular")  # 40 images, 2048-d features
def test_legacy_fid_and_stats_files_match_pytorch_fid(image_sets, tmp_path, monkeypatch):
    """pytorch-fid's --save-stats files work as genbench fid inputs, genbench's stats files as
    pytorch-fid inputs, and both give pytorch-fid's FID on the same folders to 1e-6."""
    _, (a, b) = image_sets
    ours = fid_between(a, b, mode="legacy", batch_size=BATCH, device="cpu")
    assert (ours["n_a"], ours["n_b"], ours["mode"]) == (N, N, "legacy")
    assert ours["weights_sha256"] == inc.load_inception("cpu")[1]
    made = write_source_stats(
        a, tmp_path / "ours_a.npz", mode="legacy", batch_size=BATCH, device="cpu"
    )

    # pytorch-fid offline, as the README recipe sets it up; its command-line functions
    # (`python -m pytorch_fid --save-stats A out.npz`, `python -m pytorch_fid X Y`) in-process.
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copyfile(inc.converted_weights_path(), hub / inc.HUB_FILENAME)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for src, out in ((a, "theirs_a.npz"), (b, "theirs_b.npz")):
        fid_score.save_fid_stats([str(src), str(tmp_path / out)], BATCH, "cpu", 2048, 0)
    ref = fid_score.calculate_fid_given_paths(
        [str(tmp_path / "theirs_a.npz"), str(tmp_path / "theirs_b.npz")], BATCH, "cpu", 2048, 0
    )
    assert ref > 10  # the sets differ, so a wrong feature would show
    assert ours["fid"] == pytest.approx(ref, rel=1e-6)
    from_their_stats = fid_between(tmp_path / "theirs_a.npz", b, mode="legacy", device="cpu")
    assert from_their_stats["fid"] == pytest.approx(ref, rel=1e-6)
    assert from_their_stats["n_a"] is None and from_their_stats["n_b"] == N
    with pytest.raises(UserError, match="theirs_a.npz has no genbench protocol record"):
        fid_between(tmp_path / "theirs_a.npz", b, device="cpu")  # clean, the default
    their_fid_of_ours = fid_score.calculate_fid_given_paths(
        [str(tmp_path / "ours_a.npz"), str(tmp_path / "theirs_b.npz")], BATCH, "cpu", 2048, 0
    )
    assert their_fid_of_ours == pytest.approx(ref, rel=1e-6)
    # the recipe left genbench working: same weights, same record, no refusal
    assert made.protocol.weights_sha256 == ours["weights_sha256"]
    again = fid_between(tmp_path / "ours_a.npz", b, mode="legacy", device="cpu")
    assert again["fid"] == pytest.approx(ours["fid"], rel=1e-9)
    with pytest.raises(UserError, match="made with mode legacy, this comparison uses clean"):
        fid_between(tmp_path / "ours_a.npz", b, device="cpu")


@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated")
def test_pixel_fid_matches_pytorch_fid_formula(image_sets):
    root, (a, b) = image_sets
    ours = fid_between(a, b, features="pixels")
    assert ours["mode"] is None and ours["weights_sha256"] is None
    fa, fb = (np.load(root / f"{s}.npz")["images"].reshape(N, -1) / 255 for s in "ab")
    # 192-d from 40 images: both covariances are singular; use the stable eps version.
    eps = np.eye(fa.shape[1]) * 1e-6
    ref = fid_score.calculate_frechet_distance(
        fa.mean(0), np.cov(fa, rowvar=False) + eps, fb.mean(0), np.cov(fb, rowvar=False) + eps
    )
    assert ours["fid"] == pytest.approx(ref, rel=1e-3)
    from_npz = fid_between(root / "a.npz", root / "b.npz", features="pixels")
    assert from_npz["fid"] == pytest.approx(ours["fid"], rel=1e-9)


def test_bad_fid_arguments_are_user_errors(image_sets, tmp_path):
    root, (a, b) = image_sets
    with pytest.raises(UserError, match="unknown extractor .vgg.; choose one of: classifier"):
        fid_between(a, b, features="vgg")
    with pytest.raises(UserError, match="unknown Inception mode"):
        fid_between(a, b, mode="tf")
    with pytest.raises(UserError, match="does not exist"):
        fid_between(a, tmp_path / "nope")
    save_npz(tmp_path / "small.npz", torch.zeros(3, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(UserError, match="equal image shapes"):
        fid_between(root / "a.npz", tmp_path / "small.npz", features="pixels")
    save_npz(tmp_path / "one.npz", torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(UserError, match="at least 2 images"):
        fid_between(root / "a.npz", tmp_path / "one.npz")
