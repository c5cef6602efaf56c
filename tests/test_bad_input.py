"""The bad-input catalogue: each case is one line on stderr naming what is wrong and what
to do, exit code 2, no traceback, and nothing trained."""

import pickle
import textwrap

import numpy as np
import pytest
import torch
from conftest import run_cli

BASE = """\
name: bad
datasets: [digits]
n_samples: 50
budget: {steps: 1}
metrics: [fd_pixels]
models:
  - name: copier
"""


def suite_with(tmp_path, text: str) -> str:
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def model_entry(tmp_path, entry: str) -> str:
    return suite_with(tmp_path, BASE + textwrap.indent(textwrap.dedent(entry), "  "))


CHECKPOINT_ENTRY = "- name: m\n  model: plugin_models:MeanModel\n  checkpoint: c.pt\n"


def write_checkpoint_mismatch(tmp_path):
    torch.save({"mean": torch.zeros(3, 5, 5)}, tmp_path / "c.pt")
    return model_entry(
        tmp_path, "- name: m\n  model: plugin_models:MeanModel\n  checkpoint: c.pt\n"
    )


def write_truncated_checkpoint(tmp_path):
    torch.save({"mean": torch.zeros(1, 8, 8)}, tmp_path / "c.pt")
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "c.pt").write_bytes(data[: len(data) // 2])
    return model_entry(
        tmp_path, "- name: m\n  model: plugin_models:MeanModel\n  checkpoint: c.pt\n"
    )


def write_samples(tmp_path, array):
    np.savez(tmp_path / "s.npz", array)
    return model_entry(tmp_path, "- name: s\n  samples: s.npz\n")


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):  # a pickle that creates a file when it is loaded
        return (open, (self.marker, "w"))


def write_cifar_payload(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        (folder / name).write_bytes(pickle.dumps({"data": _Payload(tmp_path / "payload-ran")}))
    return suite_with(tmp_path, BASE.replace("[digits]", "[cifar10]"))


def write_tampered_inception_weights(tmp_path):
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"not the published weights")
    np.savez(tmp_path / "a.npz", np.zeros((4, 1, 8, 8), np.uint8))
    return ["fid", str(tmp_path / "a.npz"), str(tmp_path / "a.npz")]


CASES = {
    "malformed yaml": (lambda t: suite_with(t, "name: [bad\n"), [], "not valid YAML at line"),
    "unknown key": (lambda t: suite_with(t, BASE + "epochs: 3\n"), [], "epochs: unknown key"),
    "wrong type": (
        lambda t: suite_with(t, BASE.replace("n_samples: 50", "n_samples: many")),
        [],
        "n_samples: Input should be a valid integer",
    ),
    "unknown model": (
        lambda t: suite_with(t, BASE.replace("copier", "gpt")),
        [],
        "unknown model 'gpt'; choose one of:",
    ),
    "unknown dataset": (
        lambda t: suite_with(t, BASE.replace("[digits]", "[lsun]")),
        [],
        "unknown dataset 'lsun'; choose one of:",
    ),
    "unknown metric": (
        lambda t: suite_with(t, BASE.replace("[fd_pixels]", "[is]")),
        [],
        "unknown metric 'is'; choose one of:",
    ),
    "missing dataset files": (
        lambda t: suite_with(t, BASE.replace("[digits]", "[cifar10]")),
        ["--data-root", "{tmp}"],
        "cifar-10-batches-py",
    ),
    "cifar batch that runs code": (
        write_cifar_payload,
        ["--data-root", "{tmp}"],
        "is not a CIFAR-10 python batch (refused global",
    ),
    "checkpoint does not match": (write_checkpoint_mismatch, [], "does not match model"),
    "truncated checkpoint": (write_truncated_checkpoint, [], "cannot be read"),
    "samples wrong shape": (
        lambda t: write_samples(t, np.zeros((60, 1, 5, 5), np.uint8)),
        [],
        "expected (60, 1, 8, 8)",
    ),
    "samples wrong dtype": (
        lambda t: write_samples(t, np.zeros((60, 1, 8, 8), np.int64)),
        [],
        "expected uint8",
    ),
    "samples with NaN": (lambda t: write_samples(t, np.full((60, 1, 8, 8), np.nan)), [], "NaN"),
    "unwritable output folder": (
        lambda t: suite_with(t, BASE),
        ["--out", "/proc/genbench"],
        "not writable",
    ),
    "tracking uri cannot be opened": (
        lambda t: suite_with(t, BASE),
        ["--tracking-uri", "nosuchscheme://x"],
        "cannot open MLflow tracking URI",
    ),
    "unknown model option": (
        lambda t: suite_with(
            t, BASE.replace("- name: copier", "- name: vae\n    options: {latent_dim: 16}")
        ),
        [],
        "model VAE: bad options {'latent_dim': 16}",
    ),
    "sqlite tracking uri without a file": (
        lambda t: suite_with(t, BASE),
        ["--tracking-uri", "sqlite:///"],
        "names no database file",
    ),
    "tracking server not listening": (
        lambda t: suite_with(t, BASE),
        ["--tracking-uri", "http://127.0.0.1:9"],
        "cannot reach the MLflow server at http://127.0.0.1:9",
    ),
    "inception weights checksum mismatch": (write_tampered_inception_weights, [], "6726825d"),
    "inception score without the classifier layer": (
        lambda t: suite_with(t, BASE.replace("[fd_pixels]", "[inception_score]")),
        [],
        "Inception Score needs the Inception classifier layer",
    ),
    "report ranked by a metric that cannot rank": (
        lambda t: ["report", "--out", str(t), "--primary", "fd_pixels_n50_train,ct_pixels"],
        [],
        "--primary: 'ct_pixels' cannot rank models",
    ),
    "stacked dataset on a points base": (
        lambda t: suite_with(t, BASE.replace("[digits]", "['stacked:ring8']")),
        [],
        "the base must be labelled 1-channel images",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(tmp_path, case):
    make, extra, message = CASES[case]
    made = make(tmp_path)
    args = [a.format(tmp=tmp_path) for a in extra]
    if isinstance(made, list):  # a command of its own (not `genbench run`)
        command = made
    else:
        out = [] if "--out" in args else ["--out", str(tmp_path / "out")]
        command = ["run", made, *out]
    res = run_cli(*command, *args, env={"TORCH_HOME": str(tmp_path / "torch")}, cwd=tmp_path)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1, res.stderr
    assert message in lines[0] and "Traceback" not in res.stderr
    assert lines[0].startswith("genbench: error: ")
    assert not (tmp_path / "out").exists()  # nothing created for a rejected run
    assert not (tmp_path / "payload-ran").exists()  # nothing in a data file ran
    assert not (tmp_path / "mlruns").exists()  # nothing written into the working folder
