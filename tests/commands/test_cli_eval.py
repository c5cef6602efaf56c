"""`genbench eval` and `genbench fid` on sample files the tests write."""

import json
import os

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from bench.data import load_dataset
from bench.metrics.fd import frechet_distance
from bench.stats import Protocol, Stats, load_stats, save_stats


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("samples")
    d = load_dataset("digits")
    np.savez(tmp / "test.npz", d.test.x.numpy())
    np.savez(tmp / "train.npz", d.train.x.numpy()[:359])
    np.savez(tmp / "nan.npz", np.full((10, 1, 8, 8), np.nan, np.float32))
    np.savez(tmp / "wrong.npz", np.zeros((10, 1, 5, 5), np.uint8))
    # pytorch-fid's --save-stats format (mu, sigma only), 2048-d as Inception's
    np.savez_compressed(tmp / "stats2048.npz", mu=np.zeros(2048), sigma=np.eye(2048))
    legacy = Stats(np.zeros(2048), np.eye(2048), Protocol(2048, "inception", None, "legacy"), "")
    save_stats(tmp / "legacy.npz", legacy)
    return tmp


def test_eval_real_test_images_are_not_flagged(files):
    res = run_cli(
        "eval",
        "--samples",
        str(files / "test.npz"),
        "--dataset",
        "digits",
        "--metrics",
        "fd,prdc,memorization,class_coverage",
        "--json",
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    m = out["metrics"]
    assert out["features"] == "classifier" and out["classifier_test_accuracy"] >= 0.97
    assert m["copy_fraction_1/3_classifier"] < 0.05 and m["authpct_pixels"] > 40
    assert abs(m["ct_classifier"]) < 3 and m["classes_hit"] == 10
    assert m["class_kl"] == pytest.approx(m["class_kl_test_floor"])


def test_fid_pixels_matches_the_metric_function(files):
    res = run_cli(
        "fid", str(files / "test.npz"), str(files / "train.npz"), "--features", "pixels", "--json"
    )
    assert res.returncode == 0, res.stderr
    a = np.load(files / "test.npz")["arr_0"].reshape(359, -1) / 255.0
    b = np.load(files / "train.npz")["arr_0"].reshape(359, -1) / 255.0
    assert json.loads(res.stdout)["fid"] == pytest.approx(frechet_distance(a, b), rel=1e-6)
    plain = run_cli(
        "fid", str(files / "test.npz"), str(files / "train.npz"), "--features", "pixels"
    )
    assert plain.stdout.startswith("FID: ")


@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "--samples", "{d}/nan.npz", "--dataset", "digits"], "NaN"),
        (["eval", "--samples", "{d}/wrong.npz", "--dataset", "digits"], "expected (10, 1, 8, 8)"),
        (["eval", "--samples", "{d}/missing.npz", "--dataset", "digits"], "does not exist"),
        (
            ["eval", "--samples", "{d}/test.npz", "--dataset", "digits", "--metrics", "fdd"],
            "unknown metric 'fdd'",
        ),
        (["fid", "{d}/test.npz", "{d}/train.npz", "--features", "classifier"], "--dataset"),
        (["fid", "digits:tset", "{d}/test.npz"], "digits:tset does not exist"),
        (["fid", "ring8", "{d}/test.npz"], "holds points, not images"),
        (
            ["fid", "{d}/stats2048.npz", "digits:test", "--features", "pixels"],
            "has no genbench protocol record, so it is pytorch-fid's --save-stats (Inception, "
            "legacy resize); this comparison uses extractor pixels",
        ),
        (
            ["fid", "{d}/legacy.npz", "digits:test"],
            "made with mode legacy, this comparison uses clean",
        ),
        (["fid", "{d}/legacy.npz", "{d}/test.npz", "--features", "pixels"], "extractor inception"),
        (["stats", "{d}/legacy.npz", "-o", "{d}/x.npz"], "already holds statistics"),
        (["stats", "digits", "-o", "{d}/x.txt"], "must end in .npz"),
    ],
)
def test_bad_input_is_one_line_exit_2(files, args, message):
    res = run_cli(*[a.format(d=files) for a in args])
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], res.stderr


def test_save_stats_and_stats_command_round_trip(files, tmp_path):
    """`fid --save-stats A OUT` (pytorch-fid's spelling) and `stats A -o OUT` write the same
    statistics, which `fid` then takes in place of the images."""
    saved = run_cli(
        "fid", "--save-stats", "digits:test", str(tmp_path / "s.npz"), "--features", "pixels"
    )
    assert saved.returncode == 0, saved.stderr
    made = run_cli("stats", "digits:test", "-o", str(tmp_path / "t.npz"), "--features", "pixels")
    assert made.returncode == 0, made.stderr
    assert "64-d pixels statistics, n=359" in made.stdout
    s, t = load_stats(tmp_path / "s.npz"), load_stats(tmp_path / "t.npz")
    assert np.array_equal(s.mu, t.mu) and s.protocol == t.protocol
    assert (s.protocol.source, s.protocol.n, s.protocol.extractor) == ("digits:test", 359, "pixels")
    res = run_cli("fid", "digits:train", str(tmp_path / "s.npz"), "--features", "pixels", "--json")
    assert res.returncode == 0, res.stderr
    d = load_dataset("digits")
    ref = frechet_distance(
        d.train.x.reshape(len(d.train.x), -1) / 255.0, d.test.x.reshape(359, -1) / 255.0
    )
    assert json.loads(res.stdout)["fid"] == pytest.approx(ref, rel=1e-9)


def test_fid_help_offers_no_auto_and_names_the_pipelines():
    res = run_cli("fid", "--help", env={"COLUMNS": "200"})
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    assert "inception (FID), classifier" in text and "auto =" not in text
    assert "genbench list extractors" in text
    assert "legacy = pytorch-fid's" in res.stdout and "clean = clean-fid's" in res.stdout
    assert "numbers: the drop-in mode, and the protocol of a statistics file without" in text


def test_a_fifo_among_the_samples_is_refused_not_waited_on(tmp_path):
    """#34 item 8: a FIFO named z.png in a samples folder hung `eval` (opening it waits for
    a writer)."""
    folder = tmp_path / "samples"
    folder.mkdir()
    for i in range(10):
        Image.new("L", (8, 8), 20 * i).save(folder / f"{i}.png")
    os.mkfifo(folder / "z.png")
    res = run_cli("eval", "--samples", str(folder), "--dataset", "digits", timeout=60)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert f"{folder / 'z.png'} is not a regular file; remove it from the image folder" in lines[0]
