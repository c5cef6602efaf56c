"""Exported generators (`model: torchscript:G.pt`, `model: onnx:G.onnx`) score what the module
they were exported from scores, and a pickled nn.Module is refused unopened."""

import json

import numpy as np
import pytest
import torch
from conftest import run_cli, write_suite
from torch import nn

from bench.data import load_dataset
from bench.errors import UserError
from bench.job import RunOptions, sample_seed
from bench.models import build_model, is_conditional, resolve_model
from bench.report.render import write_report
from bench.runner import Runner
from bench.suite import load_suite

Z = 16
N = 200
FD = "fd_pixels_n200_train"


class Generator(nn.Module):
    """z (and labels) -> 1x8x8 images in [-1, 1], NCHW or NHWC."""

    def __init__(self, classes: int = 0, nhwc: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(Z, 32), nn.ReLU(), nn.Linear(32, 64), nn.Tanh())
        self.embed = nn.Embedding(max(classes, 1), Z)
        self.classes, self.nhwc = classes, nhwc

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.image(self.net(z))

    def image(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, 1, 8, 8)
        return x.permute(0, 2, 3, 1) if self.nhwc else x


class ConditionalGenerator(Generator):
    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.image(self.net(z + self.embed(labels)))


def own_samples(g: nn.Module, labels=None) -> np.ndarray:
    """What the module itself gives for genbench's latents (seed 0), as uint8 NCHW."""
    z = torch.randn((N, Z), generator=torch.Generator().manual_seed(sample_seed(0)))
    with torch.no_grad():
        x = g(z) if labels is None else g(z, labels)
    return ((x.clamp(-1, 1) + 1) / 2 * 255).round().to(torch.uint8).numpy()


def export(g: nn.Module, tmp_path, inputs: tuple) -> dict[str, str]:
    torch.jit.script(g).save(str(tmp_path / "scripted.pt"))
    torch.jit.trace(g, inputs).save(str(tmp_path / "traced.pt"))
    names = ["z", "labels"][: len(inputs)]
    torch.onnx.export(
        g,
        inputs,
        str(tmp_path / "g.onnx"),
        input_names=names,
        output_names=["images"],
        dynamic_axes={k: {0: "n"} for k in [*names, "images"]},
        dynamo=False,
    )
    return {"scripted": "scripted.pt", "traced": "traced.pt", "onnx": "g.onnx"}


def exported_rows(files: dict[str, str], options: str) -> str:
    prefix = {"scripted": "torchscript", "traced": "torchscript", "onnx": "onnx"}
    return "".join(
        f"- name: {label}\n  model: {prefix[label]}:{path}\n  options: {options}\n"
        for label, path in files.items()
    )


def test_torchscript_and_onnx_score_the_fd_of_the_module_they_came_from(tmp_path):
    g = Generator().eval()
    files = export(g, tmp_path, (torch.randn(4, Z),))
    np.savez(tmp_path / "module.npz", images=own_samples(g))
    rows = exported_rows(files, '{z_dim: 16, output_range: "-1,1"}')
    suite = write_suite(tmp_path, rows + "- name: module\n  samples: module.npz\n", n_samples=N)
    runner = Runner(load_suite(suite), RunOptions(tmp_path / "out"))
    results = runner.run()
    assert [r.status for r in results] == ["FINISHED"] * 4, [r.error for r in results]
    records = {r.model: r for r in runner.store.records("tiny")}
    want = records["module"].metrics[FD]
    assert want > 0
    for label in files:
        assert records[label].metrics[FD] == pytest.approx(want, rel=1e-5), label
        assert records[label].source == "pretrained"
        assert records[label].budget_spent_steps == 0
        assert len(records[label].checkpoint_sha256) == 64  # the file, hashed
    write_report(runner.store, tmp_path / "out", "tiny")
    leaderboard = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| scripted | 1 | pretrained |" in leaderboard


def test_nhwc_output_and_labels_reach_the_exported_file(tmp_path):
    """A class-conditional export is asked the suite's labels (balanced) and its NHWC output
    is read as such: the samples are the module's own."""
    g = ConditionalGenerator(classes=10, nhwc=True).eval()
    files = export(g, tmp_path, (torch.randn(4, Z), torch.arange(4)))
    data = load_dataset("digits")
    labels = torch.arange(N) % 10
    want = own_samples(g, labels).transpose(0, 3, 1, 2)
    options = {"z_dim": Z, "output_range": "-1,1", "layout": "NHWC"}
    for label, path in files.items():
        prefix = "onnx" if label == "onnx" else "torchscript"
        cls = resolve_model(f"{prefix}:{tmp_path / path}")
        assert is_conditional(cls), label
        model = build_model(cls, data, options)
        assert model.num_classes == 10
        g0 = torch.Generator().manual_seed(sample_seed(0))
        got = model.sample(N, labels=labels, generator=g0, batch_size=64).numpy()
        assert np.abs(got.astype(int) - want.astype(int)).max() <= (label == "onnx"), label


def test_an_unconditional_export_is_not_asked_for_labels_on_a_labelled_dataset(tmp_path):
    files = export(Generator().eval(), tmp_path, (torch.randn(4, Z),))
    for label, path in files.items():
        prefix = "onnx" if label == "onnx" else "torchscript"
        cls = resolve_model(f"{prefix}:{tmp_path / path}")
        model = build_model(cls, load_dataset("digits"), {"z_dim": Z, "output_range": "0,1"})
        assert not is_conditional(cls) and not is_conditional(model), label


def test_a_pickled_module_is_refused_before_it_is_opened(tmp_path, monkeypatch):
    torch.save(Generator(), tmp_path / "pickled.pt")
    opened = []
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: opened.append(a))
    with pytest.raises(UserError, match="pickled nn.Module.*can run any code"):
        resolve_model(f"torchscript:{tmp_path / 'pickled.pt'}")
    assert opened == []
    suite = write_suite(
        tmp_path,
        '- name: g\n  model: torchscript:pickled.pt\n  options: {z_dim: 16, output_range: "0,1"}\n',
    )
    proc = run_cli("run", str(suite), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "pickled nn.Module" in proc.stderr


def test_eval_scores_an_exported_generator_as_the_modules_samples(tmp_path):
    """`genbench eval --model onnx:G.onnx` samples as a suite's seed-0 job and scores what
    `eval --samples` scores for the module's own samples."""
    g = Generator().eval()
    export(g, tmp_path, (torch.randn(4, Z),))
    np.savez(tmp_path / "module.npz", images=own_samples(g))
    common = ["--dataset", "digits", "--metrics", "fd_pixels", "--json"]
    options = ["--options", '{"z_dim": 16, "output_range": "-1,1"}', "--n", str(N)]
    got = run_cli("eval", "--model", f"onnx:{tmp_path / 'g.onnx'}", *options, *common)
    want = run_cli("eval", "--samples", str(tmp_path / "module.npz"), *common)
    assert got.returncode == 0 and want.returncode == 0, got.stderr + want.stderr
    fd = [json.loads(p.stdout)["metrics"][FD] for p in (got, want)]
    assert fd[0] == pytest.approx(fd[1], rel=1e-5)
