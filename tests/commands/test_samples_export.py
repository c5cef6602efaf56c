"""`genbench samples export`: a job's cached samples out as .npz or PNG files, equal to what
the job scored, with the asked classes of a conditional model, and read back by genbench."""

import numpy as np
import pytest
import torch
from conftest import run_cli, write_suite

from bench.cache import Cache
from bench.data import load_dataset
from bench.imageio import read_images
from bench.samples import read_samples, sample_labels
from bench.study.sources import study_runs


@pytest.fixture(scope="module")
def suite_out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    suite = write_suite(
        folder,
        "- name: copier\n- name: cc\n  model: cond-copier\n",
        n_samples=40,
        metrics="[fd_pixels]",
    )
    res = run_cli("run", str(suite), "--out", str(folder / "out"))
    assert res.returncode == 0, res.stderr
    return folder / "out"


def cached(out, model):
    run = study_runs(out, [model])[0]
    return Cache(out / "cache").load("samples", run.samples_key)


def test_npz_holds_the_scored_samples_and_the_asked_classes(suite_out, tmp_path):
    digits = load_dataset("digits")
    res = run_cli("samples", "export", "--out", str(suite_out), "--model", "cc", "--to",
                  str(tmp_path / "cc.npz"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "40 samples of 'cc'" in res.stdout
    want = cached(suite_out, "cc")
    got = read_samples(tmp_path / "cc.npz", digits)
    np.testing.assert_array_equal(got, want["images"].numpy())
    np.testing.assert_array_equal(sample_labels(tmp_path / "cc.npz", digits), want["labels"])
    assert (want["labels"] == torch.arange(40) % 10).all()  # balanced, as the suite asked


def test_png_folder_reads_back_as_the_same_images(suite_out, tmp_path):
    res = run_cli("samples", "export", "--out", str(suite_out), "--model", "copier", "--to",
                  str(tmp_path / "pngs"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    want = cached(suite_out, "copier")
    assert len(list((tmp_path / "pngs").glob("*.png"))) == 40
    np.testing.assert_array_equal(read_images(tmp_path / "pngs"), want.numpy())
    labelled = run_cli("samples", "export", "--out", str(suite_out), "--model", "cc", "--to",
                       str(tmp_path / "ccpngs"))  # fmt: skip
    assert labelled.returncode == 0, labelled.stderr
    lines = (tmp_path / "ccpngs" / "labels.txt").read_text().split()
    assert [int(c) for c in lines] == (torch.arange(40) % 10).tolist()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "nope", "--to", "x.npz"], "unknown model 'nope'"),
        (["--model", "copier", "--to", "EXISTING"], "already exists"),
    ],
)
def test_bad_requests_get_one_line(suite_out, tmp_path, args, message):
    (tmp_path / "taken.npz").write_bytes(b"")
    args = [str(tmp_path / "taken.npz") if a == "EXISTING" else a for a in args]
    args = [str(tmp_path / a) if a == "x.npz" else a for a in args]
    res = run_cli("samples", "export", "--out", str(suite_out), *args)
    assert res.returncode == 2
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
