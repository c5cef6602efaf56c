"""A diffusers pipeline saved in a local folder (`model: diffusers:PATH`) is a suite row with a
scheduler/steps sweep, samples as the pipeline itself does, and an unsafe folder is refused
with one line before diffusers loads."""

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import run_cli, write_suite

from bench.data import load_dataset
from bench.errors import UserError
from bench.job import RunOptions
from bench.models import build_model, resolve_model
from bench.origin import files_hash
from bench.runner import Runner
from bench.suite import load_suite

diffusers = pytest.importorskip("diffusers")


def tiny_unet():
    torch.manual_seed(0)
    return diffusers.UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )


@pytest.fixture(scope="module")
def ddpm_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipe") / "ddpm"
    scheduler = diffusers.DDPMScheduler(num_train_timesteps=20)
    diffusers.DDPMPipeline(unet=tiny_unet(), scheduler=scheduler).save_pretrained(folder)
    return folder


def as_uint8(images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.asarray(images)).float().permute(0, 3, 1, 2)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


@pytest.mark.parametrize("scheduler", [None, "ddim", "dpm-solver++"])
def test_a_sample_is_the_pipelines_own_for_the_same_seed(ddpm_folder, scheduler):
    options = {"steps": 5, **({"scheduler": scheduler} if scheduler else {})}
    model = build_model(resolve_model(f"diffusers:{ddpm_folder}"), load_dataset("digits"), options)
    got = model.sample(6, generator=torch.Generator().manual_seed(3), batch_size=6)
    pipe = diffusers.DDPMPipeline.from_pretrained(ddpm_folder)
    if scheduler:
        pipe.scheduler = model.pipe.scheduler
    want = pipe(
        batch_size=6,
        generator=torch.Generator().manual_seed(3),
        num_inference_steps=5,
        output_type="np",
    ).images
    assert got.dtype == torch.uint8 and got.shape == (6, 1, 8, 8)
    np.testing.assert_array_equal(got.numpy(), as_uint8(want))
    assert model.nfe == 5


def test_a_pipeline_is_a_suite_row_with_a_steps_and_scheduler_sweep(ddpm_folder, tmp_path):
    shutil.copytree(ddpm_folder, tmp_path / "ddpm")
    rows = "".join(
        f"- name: pipe-{label}\n  model: diffusers:ddpm\n  options: {options}\n"
        for label, options in [
            ("ddpm5", "{steps: 5}"),
            ("ddpm10", "{steps: 10}"),
            ("ddim5", "{steps: 5, scheduler: ddim}"),
        ]
    )
    suite = write_suite(tmp_path, rows + "- name: dcgan\n", n_samples=50)
    runner = Runner(load_suite(suite), RunOptions(tmp_path / "out"))
    results = runner.run()
    assert [r.status for r in results] == ["FINISHED"] * 4, [r.error for r in results]
    records = {r.model: r for r in runner.store.records("tiny")}
    pipes = [records[f"pipe-{k}"] for k in ("ddpm5", "ddpm10", "ddim5")]
    assert [r.nfe for r in pipes] == ["5", "10", "5"]
    assert len({r.fit_key for r in pipes}) == 1  # sampling options: one model for the sweep
    assert len({r.samples_key for r in pipes}) == 3
    for r in pipes:
        assert r.source == "pretrained" and r.budget_spent_steps == 0
        assert r.checkpoint_sha256 == files_hash(tmp_path / "ddpm")  # the folder's content
        assert r.params["model.diffusers_version"] == diffusers.__version__
        assert json.loads(r.params["model.pipeline"])["_class_name"] == "DDPMPipeline"
        assert json.loads(r.params["model.scheduler"])["_class_name"] == "DDPMScheduler"
    assert json.loads(pipes[2].sample_options)["scheduler"] == "DDIMScheduler"


def refused(folder, match: str, options=None) -> None:
    with pytest.raises(UserError, match=match):
        build_model(resolve_model(f"diffusers:{folder}"), load_dataset("digits"), options or {})


def test_unsafe_or_unsupported_folders_are_refused_before_diffusers_loads(
    ddpm_folder, tmp_path, monkeypatch
):
    pickled = tmp_path / "pickled"
    shutil.copytree(ddpm_folder, pickled)
    torch.save({}, pickled / "unet" / "diffusion_pytorch_model.bin")
    custom = tmp_path / "custom"
    shutil.copytree(ddpm_folder, custom)
    index = json.loads((custom / "model_index.json").read_text())
    (custom / "model_index.json").write_text(json.dumps({**index, "_class_name": "MyPipeline"}))
    remote = tmp_path / "remote"
    shutil.copytree(ddpm_folder, remote)
    (remote / "model_index.json").write_text(json.dumps({**index, "unet": ["mypkg", "Net"]}))
    loaded = []
    monkeypatch.setattr("baselines.diffusers_pipeline.load_pipeline", lambda *a: loaded.append(a))
    refused(pickled, r"unet/diffusion_pytorch_model.bin is a pickle-format")
    refused(custom, r"pipeline class 'MyPipeline' is not supported")
    refused(remote, r"component 'unet' is \['mypkg', 'Net'\]")
    refused(tmp_path / "absent", "not a local folder")
    assert loaded == []
    monkeypatch.undo()
    refused(ddpm_folder, "scales the initial noise", {"scheduler": "euler"})
    refused(ddpm_folder, "eta applies to DDIMPipeline", {"eta": 0.5})


def test_a_refused_folder_is_one_line_exit_2_from_a_suite(ddpm_folder, tmp_path):
    shutil.copytree(ddpm_folder, tmp_path / "p")
    torch.save({}, tmp_path / "p" / "unet" / "diffusion_pytorch_model.bin")
    suite = write_suite(tmp_path, "- name: p\n  model: diffusers:p\n")
    proc = run_cli("run", str(suite), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "pickle-format" in proc.stderr


@pytest.fixture(scope="module")
def dit_folder(tmp_path_factory):
    """A tiny class-conditional DiT pipeline of stacked:digits' 1,000 classes (3x8x8)."""
    torch.manual_seed(0)
    transformer = diffusers.DiTTransformer2DModel(
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=8,
        num_layers=1,
        sample_size=4,
        patch_size=2,
        num_embeds_ada_norm=1000,
        norm_num_groups=1,
    )
    vae = diffusers.AutoencoderKL(
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
        sample_size=8,
    )
    scheduler = diffusers.DDIMScheduler(num_train_timesteps=20)
    folder = tmp_path_factory.mktemp("pipe") / "dit"
    diffusers.DiTPipeline(transformer=transformer, vae=vae, scheduler=scheduler).save_pretrained(
        folder
    )
    return folder


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_a_class_conditional_dit_sample_is_the_pipelines_own(dit_folder, guidance):
    data = load_dataset("stacked:digits")
    cls = resolve_model(f"diffusers:{dit_folder}")
    model = build_model(cls, data, {"steps": 3, "guidance": guidance})
    assert model.num_classes == 1000 and model.nfe == (3 if guidance == 1 else 6)
    labels = torch.tensor([5, 17, 999, 0])
    got = model.sample(4, labels=labels, generator=torch.Generator().manual_seed(1), batch_size=4)
    want = diffusers.DiTPipeline.from_pretrained(dit_folder)(
        class_labels=labels.tolist(),
        guidance_scale=guidance,
        generator=torch.Generator().manual_seed(1),
        num_inference_steps=3,
        output_type="np",
    ).images
    np.testing.assert_array_equal(got.numpy(), as_uint8(want))
    with pytest.raises(UserError, match="1000 classes and the dataset 10"):
        build_model(cls, load_dataset("digits"), {"steps": 3})
