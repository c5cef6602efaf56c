"""`genbench eval` and `genbench fid` on sample files the tests write."""

import json

import numpy as np
import pytest
from conftest import run_cli

from bench.data import load_dataset
from bench.metrics.fd import frechet_distance


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("samples")
    d = load_dataset("digits")
    np.savez(tmp / "test.npz", d.test.x.numpy())
    np.savez(tmp / "train.npz", d.train.x.numpy()[:359])
    np.savez(tmp / "nan.npz", np.full((10, 1, 8, 8), np.nan, np.float32))
    np.savez(tmp / "wrong.npz", np.zeros((10, 1, 5, 5), np.uint8))
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
    ],
)
def test_bad_input_is_one_line_exit_2(files, args, message):
    res = run_cli(*[a.format(d=files) for a in args])
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], res.stderr
