"""Statistics files (bench.stats): pytorch-fid's format plus a protocol record, read back by
pytorch-fid itself; pytorch-fid's and clean-fid's own files read by genbench; contradictions
refused. No Inception here: the features are pixels or a plug-in function."""

import json
import os
import stat
import sys
import types
from pathlib import Path

import cleanfid
import numpy as np
import pytest
import torch
from cleanfid import fid as cleanfid_fid
from PIL import Image
from pytorch_fid import fid_score

from bench import __version__ as VERSION
from bench import stats as stats_module
from bench.errors import UserError
from bench.features.pixels import pixel_features
from bench.fid import fid_between, write_source_stats
from bench.imageio import save_npz
from bench.metrics.fd import frechet_distance
from bench.npz import is_stats_file
from bench.stats import (
    PROTOCOL_KEY,
    Protocol,
    Stats,
    check_compatible,
    compute_stats,
    load_stats,
    save_stats,
)


def images(n: int, seed: int, c: int = 3, size: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, size, size), dtype=torch.uint8, generator=g)


def mean_colour(x: torch.Tensor) -> np.ndarray:
    """A plug-in extractor: 3-d features (mean of each channel)."""
    return x.float().mean(dim=(2, 3)).numpy()


def plugin_stats(n=30, seed=0, **overrides):
    kwargs = dict(extractor="mean_colour", features=mean_colour, dim=3, weights_sha256="ab" * 32)
    return compute_stats(images(n, seed), **{**kwargs, "source": "test", **overrides})


def test_round_trip_keeps_stats_and_protocol_and_pytorch_fid_reads_it(tmp_path):
    made = plugin_stats(mode="m1")
    save_stats(tmp_path / "ref.npz", made)
    back = load_stats(tmp_path / "ref.npz")
    assert back.origin == "genbench" and back.protocol == made.protocol
    assert back.protocol == Protocol(3, "mean_colour", "ab" * 32, "m1", 30, "test", None, VERSION)
    feats = mean_colour(images(30, 0)).astype(np.float64)
    assert np.allclose(back.mu, feats.mean(0), rtol=1e-12)
    assert np.allclose(back.sigma, np.cov(feats, rowvar=False), rtol=1e-10)
    # pytorch-fid reads the file as its own (it never touches the model for an .npz) ...
    mu, sigma = fid_score.compute_statistics_of_path(str(tmp_path / "ref.npz"), None, 50, 3, "cpu")
    assert np.array_equal(mu, back.mu) and np.array_equal(sigma, back.sigma)
    # ... and nothing in it needs pickle.
    with np.load(tmp_path / "ref.npz", allow_pickle=False) as f:
        assert set(f.files) == {"mu", "sigma", PROTOCOL_KEY}
        record = json.loads(str(f[PROTOCOL_KEY]))
        assert (record["extractor"], record["genbench_version"]) == ("mean_colour", VERSION)


def test_stats_file_is_readable_by_all_under_umask_022(tmp_path):
    """#26 item 6: statistics files were written 0600 whatever the umask."""
    old = os.umask(0o022)
    try:
        save_stats(tmp_path / "ref.npz", plugin_stats())
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "ref.npz").st_mode) == 0o644


def test_file_without_record_is_pytorch_fids_legacy_protocol(tmp_path):
    """pytorch-fid's --save-stats writes mu and sigma only (np.savez_compressed): its protocol
    is Inception pool3 after the legacy resize, so a clean comparison refuses it (#26 item 3:
    it gave 156.98 where pytorch-fid gives 40.733)."""
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(20, 5))
    np.savez_compressed(tmp_path / "p.npz", mu=feats.mean(0), sigma=np.cov(feats, rowvar=False))
    s = load_stats(tmp_path / "p.npz")
    assert s.origin == "pytorch-fid format"
    assert s.protocol == Protocol(5, "inception", None, "legacy")
    check_compatible(s, Protocol(5, "inception", "cd" * 32, "legacy"), "p.npz")
    with pytest.raises(
        UserError,
        match=r"p.npz has no genbench protocol record, so it is pytorch-fid's --save-stats "
        r"\(Inception, legacy resize\); this comparison uses mode clean: the numbers are not "
        r"comparable: pass --mode legacy, or recompute them with `genbench stats`",
    ):
        check_compatible(s, Protocol(5, "inception", None, "clean"), "p.npz")
    with pytest.raises(UserError, match="this comparison uses dimension 2048"):
        check_compatible(s, Protocol(2048, "inception", None, "legacy"), "p.npz")
    with pytest.raises(UserError, match="this comparison uses extractor pixels"):
        check_compatible(s, Protocol(5, "pixels"), "p.npz")


def test_fid_never_compares_statistics_of_different_protocols(tmp_path):
    """Every comparison path checks protocols: a file against the requested one (before any
    image is read) and two files against each other."""

    def write(name, **protocol):
        made = Stats(np.zeros(4), np.eye(4), Protocol(4, "inception", **protocol), "genbench")
        save_stats(tmp_path / name, made)
        return tmp_path / name

    clean = write("clean.npz", mode="clean", weights_sha256="ab" * 32)
    other_weights = write("other.npz", mode="clean", weights_sha256="cd" * 32)
    legacy = write("legacy.npz", mode="legacy", weights_sha256="ab" * 32)
    np.savez_compressed(tmp_path / "theirs.npz", mu=np.ones(4), sigma=np.eye(4))
    theirs = tmp_path / "theirs.npz"
    assert fid_between(clean, clean)["fid"] == 0
    assert fid_between(theirs, legacy, mode="legacy")["fid"] == pytest.approx(4.0)
    with pytest.raises(UserError, match="theirs.npz has no genbench protocol record"):
        fid_between(theirs, clean)  # the default mode is clean
    with pytest.raises(UserError, match="clean.npz was made with mode clean, this comparison"):
        fid_between(theirs, clean, mode="legacy")
    with pytest.raises(
        UserError,
        match=r"other.npz was made with weights sha256 cdcdcdcdcdcd\.\.\., \S*clean.npz with "
        r"abababababab\.\.\.; the numbers are not comparable",
    ):
        fid_between(clean, other_weights)
    with pytest.raises(UserError, match="theirs.npz has no genbench protocol record"):
        fid_between(theirs, "digits:test", features="pixels")  # refused before images load


@pytest.mark.parametrize(
    "mode, model, want",
    [
        ("clean", "inception_v3", ("inception", "clean")),
        ("legacy_pytorch", "inception_v3", ("inception", "legacy")),
        ("legacy_tensorflow", "inception_v3", ("inception", "clean-fid's legacy_tensorflow")),
        ("clean", "clip_vit_b_32", ("clip_vit_b_32", "clean")),
    ],
)
def test_cleanfid_custom_stats_are_read_with_their_mode(tmp_path, monkeypatch, mode, model, want):
    """clean-fid's make_custom_stats names and writes the file; its stats folder is moved
    into tmp_path and its network replaced by a 4-d feature function (no download)."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, im in enumerate(images(6, 1).permute(0, 2, 3, 1).numpy()):
        Image.fromarray(im).save(folder / f"{i}.png")
    monkeypatch.setattr(cleanfid, "__file__", str(tmp_path / "cleanfid" / "__init__.py"))
    fake = lambda x: x.float().mean(dim=(2, 3)).repeat(1, 2)[:, :4]  # noqa: E731
    monkeypatch.setattr(cleanfid_fid, "build_feature_extractor", lambda *a, **k: fake)
    clip = types.ModuleType("cleanfid.clip_features")  # its CLIP branch: the same fake
    clip.CLIP_fx, clip.img_preprocess_clip = (lambda name: fake), (lambda im: im)
    monkeypatch.setitem(sys.modules, "cleanfid.clip_features", clip)
    cleanfid_fid.make_custom_stats(
        "My_Set", str(folder), mode=mode, model_name=model, device=torch.device("cpu"),
        verbose=False, batch_size=6,
    )  # fmt: skip
    (path,) = (tmp_path / "cleanfid" / "stats").glob("*_na.npz")  # not its KID file
    s = load_stats(path)
    assert s.origin == "clean-fid" and (s.protocol.extractor, s.protocol.mode) == want
    assert s.protocol.dim == 4
    if want[1] != "clean":
        with pytest.raises(UserError, match=f"made with mode {want[1]}"):
            check_compatible(s, Protocol(4, want[0], None, "clean"), path.name)


def test_contradicting_protocol_is_refused_naming_the_field():
    s = plugin_stats(mode="legacy")
    ok = Protocol(3, "mean_colour", "ab" * 32, "legacy")
    check_compatible(s, ok, "ref.npz")
    cases = {
        Protocol(3, "inception", "ab" * 32, "legacy"): "extractor mean_colour, this comparison "
        "uses inception",
        Protocol(1024, "mean_colour", None, None): "dimension 3, this comparison uses 1024",
        Protocol(3, "mean_colour", None, "clean"): "mode legacy, this comparison uses clean; "
        "the numbers are not comparable: pass --mode legacy",
        Protocol(3, "mean_colour", "cd" * 32, None): "weights sha256 abababababab...",
    }
    for wanted, message in cases.items():
        with pytest.raises(UserError, match=message.replace("(", r"\(")):
            check_compatible(s, wanted, "ref.npz")


def test_real_covariances_pass_the_symmetry_and_semi_definiteness_checks(tmp_path):
    """pytorch-fid's np.cov of float32 activations, fewer images than dimensions (rank
    deficient: eigenvalues at rounding level on either side of 0), also rounded to float32;
    one eigenvalue clearly below 0 is refused."""
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(512, 512)) * np.exp(-np.arange(512) / 50)
    act = np.maximum(rng.normal(size=(40, 512)) @ mixing + 0.3, 0).astype(np.float32)
    sigma = np.cov(act, rowvar=False)
    assert np.linalg.eigvalsh(sigma)[0] < 0  # rounding, as in real files
    for name, s in (("f64", sigma), ("f32", sigma.astype(np.float32))):
        np.savez(tmp_path / f"{name}.npz", mu=act.mean(0), sigma=s)
        assert load_stats(tmp_path / f"{name}.npz").sigma.shape == (512, 512)
    w, v = np.linalg.eigh(sigma)
    w[0] = -1e-4 * w[-1]
    np.savez(tmp_path / "bad.npz", mu=act.mean(0), sigma=(v * w) @ v.T)
    with pytest.raises(UserError, match="a covariance has none below 0"):
        load_stats(tmp_path / "bad.npz")


def test_shapes_and_sizes_are_checked_from_the_headers_before_reading(tmp_path, monkeypatch):
    """#34 item 7: a small file declaring a 24000 x 24000 sigma allocated 4.3 GiB before any
    check. Nothing but the headers is read for these: read_rows is never called."""
    monkeypatch.setattr(stats_module, "MAX_STATS_DIM", 4)
    monkeypatch.setattr(stats_module, "read_rows", lambda *a: pytest.fail("data was read"))
    cases = {
        write_npz(tmp_path / "big.npz", mu=np.zeros(5), sigma=np.eye(5)): (
            r"'sigma' is 5 x 5; statistics hold at most 4-d features"
        ),
        write_npz(tmp_path / "mismatch.npz", mu=np.zeros(3), sigma=np.eye(2)): (
            r"'mu' must be \(d,\) and 'sigma' \(d, d\), got \(3,\) and \(2, 2\)"
        ),
        write_npz(tmp_path / "rows.npz", mu=np.zeros((3, 1)), sigma=np.eye(3)): r"got \(3, 1\)",
        write_npz(tmp_path / "cplx.npz", mu=np.zeros(3, complex), sigma=np.eye(3)): "numeric",
    }
    for path, message in cases.items():
        with pytest.raises(UserError, match=message):
            load_stats(path)
    with pytest.raises(UserError, match="hold at most 4-d features: use an extractor with fewer"):
        six = plugin_stats(dim=None, features=lambda x: np.ones((len(x), 6)))
        save_stats(tmp_path / "out.npz", six)


def record_file(path: Path, record) -> Path:
    """A 3-d statistics file with this record (a dict is completed into a valid one)."""
    if isinstance(record, dict):
        base = {"format": "genbench-stats/1", "dim": 3, "extractor": "mean_colour"}
        record = np.array(json.dumps({**base, **record}))
    return write_npz(path, mu=np.zeros(3), sigma=np.eye(3), **{PROTOCOL_KEY: record})


@pytest.mark.parametrize(
    "record, message",
    [
        ({"weights_sha256": 5}, "record's weights_sha256 must be a string or null, got int '5'"),
        ({"weights_sha256": ["ab"]}, "weights_sha256 must be a string or null, got list"),
        ({"mode": {"a": 1}}, "record's mode must be a string or null, got dict"),
        ({"n": "50"}, "record's n must be a positive integer or null, got str '50'"),
        ({"n": True}, "record's n must be a positive integer or null, got bool"),
        ({"n": 0}, "record's n must be a positive integer or null, got int '0'"),
        ({"dim": 3.0}, "record's dim must be a positive integer, got float"),
        ({"extractor": None}, "record's extractor must be a string, got missing"),
        ({"source": 1}, "record's source must be a string or null, got int"),
        ({"genbench_version": 1}, "record's genbench_version must be a string or null"),
        (np.array(["{}", "{}"]), r"must be one string of at most 65536 characters, not <U2 of"),
        (np.array(7), r"must be one string of at most 65536 characters, not int64 of shape \(\)"),
        (np.array("x" * 65537), "not <U65537 of shape"),
    ],
)
def test_malformed_record_is_one_line(tmp_path, record, message):
    with pytest.raises(UserError, match=message):
        load_stats(record_file(tmp_path / "r.npz", record))


def test_plugin_extractor_of_the_wrong_dimension_is_refused():
    with pytest.raises(UserError, match="gave 3-d features, not 4"):
        plugin_stats(dim=4)


def test_fid_from_stats_files_equals_fid_from_images(tmp_path):
    a, b = images(40, 1, c=1, size=3), images(30, 2, c=1, size=3)
    save_npz(tmp_path / "a.npz", a)
    save_npz(tmp_path / "b.npz", b)
    direct = frechet_distance(pixel_features(a), pixel_features(b))
    write_source_stats(tmp_path / "a.npz", tmp_path / "sa.npz", features="pixels")
    write_source_stats(tmp_path / "b.npz", tmp_path / "sb.npz", features="pixels")
    assert is_stats_file(tmp_path / "sa.npz") and not is_stats_file(tmp_path / "a.npz")
    for x, y in (("sa", "b"), ("a", "sb"), ("sa", "sb")):
        r = fid_between(tmp_path / f"{x}.npz", tmp_path / f"{y}.npz", features="pixels")
        assert r["fid"] == pytest.approx(direct, rel=1e-12)
        assert (r["n_a"], r["n_b"]) == (40, 30)
    # Files without a record (pytorch-fid's protocol, legacy Inception): n unknown, the same FD.
    for name in ("sa", "sb"):
        s = load_stats(tmp_path / f"{name}.npz")
        np.savez(tmp_path / f"foreign_{name}.npz", mu=s.mu, sigma=s.sigma)
    r = fid_between(tmp_path / "foreign_sa.npz", tmp_path / "foreign_sb.npz", mode="legacy")
    assert r["n_a"] is None and r["fid"] == pytest.approx(direct, rel=1e-12)


def test_dataset_split_inputs_and_their_record(tmp_path):
    from bench.data import load_dataset

    d = load_dataset("digits")
    made = write_source_stats("digits:test", tmp_path / "t.npz", features="pixels")
    p = made.protocol
    assert (p.source, p.source_hash, p.n, p.dim) == (
        "digits:test",
        d.content_hash,
        len(d.test.x),
        64,
    )
    r = fid_between("digits", tmp_path / "t.npz", features="pixels")
    ref = frechet_distance(pixel_features(d.train.x), pixel_features(d.test.x))
    assert r["fid"] == pytest.approx(ref, rel=1e-12) and r["n_a"] == len(d.train.x)


def write_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def test_bad_stats_files_are_user_errors(tmp_path):
    eye = np.eye(3)
    good = json.dumps({"format": "genbench-stats/1", "dim": 3, "extractor": "pixels"})
    cases = {
        write_npz(tmp_path / "nan.npz", mu=np.full(3, np.nan), sigma=eye): "NaN",
        write_npz(tmp_path / "shape.npz", mu=np.zeros(3), sigma=np.eye(4)): r"\(d, d\)",
        write_npz(tmp_path / "str.npz", mu=np.array(["a"]), sigma=eye): "expected a numeric",
        write_npz(tmp_path / "bool.npz", mu=np.zeros(3, bool), sigma=eye): "real numbers",
        write_npz(tmp_path / "rec.npz", mu=np.zeros(3), sigma=eye, **{PROTOCOL_KEY: "{"}): "record",
        write_npz(
            tmp_path / "dim.npz", mu=np.zeros(2), sigma=np.eye(2), **{PROTOCOL_KEY: np.array(good)}
        ): "says 3-d features",
        write_npz(tmp_path / "noms.npz", images=np.zeros((2, 1, 2, 2), np.uint8)): "no statistics",
        # #34 item 5: these gave FID 0.0 and 11.77 with exit 0
        write_npz(tmp_path / "asym.npz", mu=np.zeros(3), sigma=np.triu(np.ones((3, 3)))): (
            r"'sigma' is not symmetric: entries differ from their transposes by up to 1 \(its "
            r"largest entry is 1\); a covariance is symmetric"
        ),
        write_npz(tmp_path / "neg.npz", mu=np.zeros(3), sigma=-0.05 * eye): (
            r"'sigma' has the eigenvalue -0.05 \(its largest is -0.05\); a covariance has none "
            r"below 0"
        ),
    }
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    cases[tmp_path / "junk.npz"] = "not a readable"
    for path, message in cases.items():
        with pytest.raises(UserError, match=message):
            load_stats(path)
    with pytest.raises(UserError, match="must end in .npz"):
        save_stats(tmp_path / "out.txt", plugin_stats())
    save_stats(tmp_path / "ok.npz", plugin_stats())
    with pytest.raises(UserError, match="already holds statistics"):
        write_source_stats(tmp_path / "ok.npz", tmp_path / "x.npz", features="pixels")
