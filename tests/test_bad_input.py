"""The bad-input catalogue: each case is one line on stderr naming what is wrong and what
to do, exit code 2, no traceback, and nothing trained."""

import io
import json
import os
import pickle
import resource
import struct
import textwrap
import zipfile
import zlib

import numpy as np
import pytest
import torch
from conftest import ROOT, TESTS, run_cli
from PIL import Image

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


def write_animal_mnist_payload(tmp_path):
    import gzip
    import zipfile

    payload = gzip.compress(pickle.dumps(_Payload(tmp_path / "payload-ran")))
    folder = "animal_mnist/data/Animal_MNIST"
    with zipfile.ZipFile(tmp_path / "animal_mnist-0.4-py3-none-any.whl", "w") as z:
        z.writestr(f"{folder}/animal_data_version_3.gz", payload)
        z.writestr(f"{folder}/animal_label_version_3.gz", payload)
    return suite_with(tmp_path, BASE.replace("[digits]", "[animal-mnist]"))


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


def write_suite_bytes(tmp_path, data: bytes) -> str:
    (tmp_path / "suite.yaml").write_bytes(data)
    return str(tmp_path / "suite.yaml")


# 9^9 = 387 million strings from 1 KB: expanded by whatever walks the options (JSON, hashing)
YAML_BOMB = "    options:\n      a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"      a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)
)


def write_npz_member(path, header: dict, data: bytes) -> None:
    """An .npz whose one array declares `header` (shape, descr) and holds `data`."""
    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(npy, {"fortran_order": False, **header})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("arr_0.npy", npy.getvalue() + data)


def huge_header(path):
    write_npz_member(path, {"descr": "|u1", "shape": (10**11, 1, 8, 8)}, bytes(64 * 100))
    return path


def npz_bomb(path):
    """250,000 digits-sized zero images: a few KB compressed, 16 MB declared (the count is
    what a bomb has to inflate, and it is checked before anything is decompressed)."""
    np.savez_compressed(path, np.zeros((250_000, 1, 8, 8), np.uint8))
    return path


def corrupt_deflate(path):
    np.savez_compressed(path, (np.arange(60 * 64) % 7).astype(np.uint8).reshape(60, 1, 8, 8))
    data = bytearray(path.read_bytes())
    start = data.index(b"arr_0.npy") + len("arr_0.npy") + 16  # past the zip64 extra field
    data[start : start + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    return path


def not_a_zip(path):
    path.write_bytes(b"PK\x03\x04" + b"\x00\xff" * 100)
    return path


def string_images(path):
    np.savez(path, np.full((60, 1, 8, 8), "x"))
    return path


def string_points(path):
    np.savez(path, np.full((60, 2), "1.5"))
    return path


def samples_entry(tmp_path, write, dataset: str = "digits") -> str:
    write(tmp_path / "s.npz")
    text = BASE.replace("[digits]", f"[{dataset}]") + "  - name: s\n    samples: s.npz\n"
    return suite_with(tmp_path, text)


def translations_file(path, rows):
    """60 translations (28x28) with these source_indices."""
    np.savez(path, images=np.zeros((60, 1, 28, 28), np.uint8), source_indices=rows)
    return path


def translations_with_indices(tmp_path, rows, dataset: str = "edges2mnist") -> str:
    """A samples-file suite on a translation task: 60 translations with these source_indices."""
    translations_file(tmp_path / "s.npz", rows)
    text = BASE.replace("[digits]", f"[{dataset}]")
    if dataset == "edges2mnist":
        text = text.replace("[fd_pixels]", "[psnr]")
    return suite_with(tmp_path, text.replace("name: copier", "name: s\n    samples: s.npz"))


def eval_of(tmp_path, write, dataset: str = "digits") -> list[str]:
    return ["eval", "--samples", str(write(tmp_path / "s.npz")), "--dataset", dataset]


def write_folder_dataset(tmp_path, n: int, model: str = "copier") -> str:
    (tmp_path / "imgs").mkdir()
    for i in range(n):
        Image.new("L", (8, 8), 30 * i).save(tmp_path / "imgs" / f"{i}.png")
    text = BASE.replace("[digits]", f"['folder:{tmp_path / 'imgs'}']")
    return suite_with(tmp_path, text.replace("- name: copier", f"- name: {model}"))


def stats_npz(path, mu, sigma, record: dict | None = None):
    """A statistics file: pytorch-fid's mu and sigma, and genbench's record when given."""
    arrays = {"mu": mu, "sigma": sigma}
    if record is not None:
        record = {"format": "genbench-stats/1", "dim": len(mu), **record}
        arrays["genbench_protocol"] = np.array(json.dumps(record))
    np.savez(path, **arrays)
    return path


INCEPTION_CLEAN = {"extractor": "inception", "mode": "clean", "weights_sha256": "ab" * 32}


def fid_against(tmp_path, write_stats) -> list[str]:
    """`genbench fid` of 4 images against the statistics file `write_stats` writes."""
    np.savez(tmp_path / "a.npz", np.zeros((4, 1, 8, 8), np.uint8))
    return ["fid", str(tmp_path / "a.npz"), str(write_stats(tmp_path / "ref.npz"))]


def fid_of_two_stats(tmp_path, record_a: dict, record_b: dict) -> list[str]:
    a = stats_npz(tmp_path / "a.npz", np.zeros(8), np.eye(8), record_a)
    return ["fid", str(a), str(stats_npz(tmp_path / "b.npz", np.ones(8), np.eye(8), record_b))]


def huge_sigma(path):
    """mu and a zero sigma one past MAX_STATS_DIM (uint8, so 67 MB inflated, 70 KB stored):
    read and checked whole, it took minutes; the header says enough."""
    np.savez_compressed(path, mu=np.zeros(8193), sigma=np.zeros((8193, 8193), np.uint8))
    return path


def plugin_module(tmp_path, source: str, where: str = "plugins") -> str:
    """A suite that imports tmp_path/broken_plugin.py (the CLI runs in tmp_path): from its
    `plugins:`, or as a model's module (`model: broken_plugin:Model`)."""
    (tmp_path / "broken_plugin.py").write_text(source)
    if where == "plugins":
        return suite_with(tmp_path, BASE + "plugins: [broken_plugin]\n")
    return suite_with(
        tmp_path, BASE.replace("- name: copier", "- name: m\n    model: broken_plugin:Model")
    )


def layout_file(path, shapes: dict) -> None:
    """A state dict of these names and shapes in a few bytes: every tensor a view of one
    zero (stride 0), as torch.save keeps it. Only names and shapes are checked."""
    zero = torch.zeros(())
    torch.save({k: zero.expand(tuple(shape)) for k, shape in shapes.items()}, path)


def dinov2_vits14_shapes() -> dict:
    from bench.features import dinov2

    with torch.device("meta"):
        model = dinov2.build_model("vits14")
    return {k: v.shape for k, v in dinov2.official_template(model).items()}


def weights_suite(tmp_path, metric: str, extractor: str, state=None, data: bytes = b"") -> str:
    """A suite whose metric loads `extractor` from w.pth in `weights:`: `state` saved with
    torch.save, else the bytes `data`."""
    if state is None:
        (tmp_path / "w.pth").write_bytes(data)
    else:
        torch.save(state, tmp_path / "w.pth")
    text = BASE.replace("[fd_pixels]", f"[{metric}]") + f"weights: {{{extractor}: w.pth}}\n"
    return suite_with(tmp_path, text)


def dinov2_of_another_size(tmp_path) -> str:
    layout_file(tmp_path / "w.pth", dinov2_vits14_shapes())
    text = BASE.replace("[fd_pixels]", "[fd_dinov2_vitb14]") + "weights: {dinov2_vitb14: w.pth}\n"
    return suite_with(tmp_path, text)


def dinov2_in_the_hub_cache(tmp_path, data: bytes) -> str:
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "dinov2_vits14_pretrain.pth").write_bytes(data)
    return suite_with(tmp_path, BASE.replace("[fd_pixels]", "[fd_dinov2_vits14]"))


def small_clip_tower(tmp_path) -> str:
    from bench.features import clip

    small = clip.ClipVitConfig(width=64, layers=2, patch=14, resolution=56, embed_dim=32)
    layout_file(tmp_path / "w.pth", {k: v.shape for k, v in clip.openai_template(small).items()})
    return suite_with(
        tmp_path, BASE.replace("[fd_pixels]", "[cmmd]") + "weights: {clip_vitl14_336: w.pth}\n"
    )


PAIRED = BASE.replace("[digits]", "[edges2mnist]").replace("name: copier", "name: identity")


def vgg16_of_another_width(tmp_path) -> str:
    from bench.features.lpips_vgg16 import vgg16_template

    shapes = {k: v.shape for k, v in vgg16_template().items()}
    shapes["features.0.weight"] = (32, 3, 3, 3)
    layout_file(tmp_path / "w.pth", shapes)
    return suite_with(
        tmp_path, PAIRED.replace("[fd_pixels]", "[lpips]") + "weights: {lpips_vgg16: w.pth}\n"
    )


def samples_folder_with(tmp_path, name: str, data: bytes) -> list[str]:
    """`genbench eval` of a folder of 60 images and one more file, `name`, holding `data`."""
    folder = tmp_path / "s"
    folder.mkdir()
    for i in range(60):
        Image.new("L", (8, 8), 4 * i).save(folder / f"{i}.png")
    (folder / name).write_bytes(data)
    return ["eval", "--samples", str(folder), "--dataset", "digits"]


def png_declaring(width: int, height: int) -> bytes:
    """An 8x8 PNG whose header says width x height (CRC fixed, so only the size is wrong)."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def bmp_with_palette_size(colors: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("P", (8, 8)).save(buffer, "BMP")
    data = bytearray(buffer.getvalue())
    data[46:50] = struct.pack("<I", colors)  # biClrUsed
    return bytes(data)


def fifo_samples_folder(tmp_path):
    """A samples folder of 60 images and a FIFO named z.png (opening it waits for a writer)."""
    folder = tmp_path / "s"
    folder.mkdir()
    for i in range(60):
        Image.new("L", (8, 8), 4 * i).save(folder / f"{i}.png")
    os.mkfifo(folder / "z.png")
    return folder


def store_path_of(tmp_path, make) -> str:
    """A suite, with `make` called on {tmp}/store (what --tracking-uri will name)."""
    make(tmp_path / "store")
    return suite_with(tmp_path, BASE)


def report_compared_with_a_missing_folder(tmp_path) -> list[str]:
    after = tmp_path / "after" / "mlruns"
    after.mkdir(parents=True)
    (after / "mlflow.db").touch()
    return ["report", "--out", str(after.parent), "--compare", str(tmp_path / "before")]


COND_BASE = BASE.replace("[fd_pixels]", "[fd_pixels, label_match]") + "plugins: [plugin_metrics]\n"


def cond_suite(tmp_path, entry: str, base: str = COND_BASE) -> str:
    """A suite asking for a conditional metric (tests/plugin_metrics.py's label_match) with
    `entry` as its only model."""
    text = base.replace("  - name: copier\n", textwrap.indent(textwrap.dedent(entry), "  "))
    return suite_with(tmp_path, text)


def labelled_samples(tmp_path, labels, base: str = COND_BASE) -> str:
    """A samples-file entry of 60 images with these labels (None: no labels)."""
    arrays = {"images": np.zeros((60, 1, 8, 8), np.uint8)}
    np.savez(tmp_path / "s.npz", **arrays, **({} if labels is None else {"labels": labels}))
    return cond_suite(tmp_path, "- name: s\n  samples: s.npz\n", base)


def study_of_samples(tmp_path, arg: str) -> list[str]:
    np.savez(tmp_path / "s.npz", np.zeros((60, 1, 8, 8), np.uint8))
    out = str(tmp_path / "out")
    return ["study", "--out", out, "--samples", arg, "--dataset", "digits", "--score"]


# -- real models in: exported generators and diffusers pipelines (#32) --------------------------
EXPORTED_OPTIONS = '{z_dim: 4, output_range: "0,1"}'


def pickled_generator(tmp_path):
    """torch.save of a module is a pickle: this one creates a file if it is ever loaded."""
    torch.save({"net": _Payload(tmp_path / "payload-ran")}, tmp_path / "g.pt")
    entry = f"- name: g\n  model: torchscript:g.pt\n  options: {EXPORTED_OPTIONS}\n"
    return model_entry(tmp_path, entry)


def pipeline_folder(tmp_path, index: dict, files: dict[str, bytes]) -> str:
    """A folder with this model_index.json and these files, as a diffusers: entry."""
    folder = tmp_path / "pipe"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps(index))
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return model_entry(tmp_path, "- name: p\n  model: diffusers:pipe\n")


DDPM_INDEX = {
    "_class_name": "DDPMPipeline",
    "unet": ["diffusers", "UNet2DModel"],
    "scheduler": ["diffusers", "DDPMScheduler"],
}


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
    "unknown executor": (
        lambda t: suite_with(t, BASE),
        ["--executor", "dask"],
        "unknown executor 'dask'; choose one of: local, ray, slurm",
    ),
    "option the executor does not declare": (
        lambda t: suite_with(t, BASE),
        ["--executor", "ray", "--executor-option", "nodes=2"],
        "--executor-option 'nodes=2': give KEY=VALUE with a KEY of executor 'ray' (address,",
    ),
    "executor option of the wrong type": (
        lambda t: suite_with(t, BASE),
        ["--executor", "ray", "--executor-option", "cpus_per_job=many"],
        "--executor-option 'cpus_per_job=many': cpus_per_job takes float values",
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
    "no jobs at once": (
        lambda t: suite_with(t, BASE),
        ["--jobs", "0"],
        "--jobs must be 1 or more, got 0",
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
    # -- suite files that would exhaust memory or crash the loader (#17 items 2, 3) ----------
    "yaml bomb under model options": (
        lambda t: suite_with(t, BASE + YAML_BOMB),
        [],
        "more than 100000 values once aliases are expanded",
    ),
    "recursive yaml alias": (
        lambda t: suite_with(t, BASE + "    options: {loop: &a [*a]}\n"),
        [],
        "an alias refers to the collection that contains it",
    ),
    "suite file of binary garbage": (
        lambda t: write_suite_bytes(t, bytes(range(256)) * 4),
        [],
        "not a UTF-8 text file",
    ),
    "suite file over the size limit": (
        lambda t: suite_with(t, BASE + f"description: {'x' * 300_000}\n"),
        [],
        "a suite file is at most 256 KiB",
    ),
    "model option that is not a plain value": (
        lambda t: suite_with(t, BASE + "    options: {std: [[1, 2], [3, 4]]}\n"),
        [],
        "option 'std': a list that holds lists or mappings",
    ),
    # -- values outside what the run can use (#17 item 4, 5) ---------------------------------
    "seed 10^23": (
        lambda t: suite_with(t, BASE + "seeds: [100000000000000000000000]\n"),
        [],
        "seeds[0]: Input should be less than or equal to 4294967295",
    ),
    "n_samples past the limit": (
        lambda t: suite_with(t, BASE.replace("n_samples: 50", "n_samples: 1000000000")),
        [],
        "n_samples: Input should be less than or equal to 200000",
    ),
    "suite named ..": (
        lambda t: suite_with(t, BASE.replace("name: bad", "name: '..'")),
        [],
        "'..' names the output folder",
    ),
    "samples file with no images": (
        lambda t: samples_entry(t, lambda p: np.savez(p, np.zeros((0, 1, 8, 8), np.uint8))),
        [],
        "holds 0 samples; the suite asks for n_samples=50",
    ),
    "samples file with fewer images than n_samples": (
        lambda t: samples_entry(t, lambda p: np.savez(p, np.zeros((49, 1, 8, 8), np.uint8))),
        [],
        "holds 49 samples; the suite asks for n_samples=50",
    ),
    "folder dataset with one image": (
        lambda t: write_folder_dataset(t, 1),
        [],
        "holds 1 images; a dataset needs at least 8",
    ),
    # -- samples files that crashed the loader or inflate (#17 items 3, 9), in run and eval ---
    "run: samples of strings": (
        lambda t: samples_entry(t, string_images),
        [],
        "holds <U1 values; expected a numeric array",
    ),
    "run: samples header declaring 10^11 images": (
        lambda t: samples_entry(t, huge_header),
        [],
        "is truncated: its shape (100000000000, 1, 8, 8) needs",
    ),
    "run: samples .npz that inflates past the limit": (
        lambda t: samples_entry(t, npz_bomb),
        [],
        "holds 250000 images; an .npz may hold at most 200000",
    ),
    "run: samples that are not a zip, for ring8": (
        lambda t: samples_entry(t, not_a_zip, "ring8"),
        [],
        "s.npz is not a readable .npz",
    ),
    "run: samples with corrupt compressed data": (
        lambda t: samples_entry(t, corrupt_deflate),
        [],
        "(Error -3 while decompressing data: invalid block type)",
    ),
    "run: string points for ring8": (
        lambda t: samples_entry(t, string_points, "ring8"),
        [],
        "holds <U3 values; expected a numeric array",
    ),
    "eval: samples of strings": (
        lambda t: eval_of(t, string_images),
        [],
        "holds <U1 values; expected a numeric array",
    ),
    "eval: samples header declaring 10^11 images": (
        lambda t: eval_of(t, huge_header),
        [],
        "is truncated: its shape (100000000000, 1, 8, 8) needs",
    ),
    "eval: samples .npz that inflates past the limit": (
        lambda t: eval_of(t, npz_bomb),
        [],
        "holds 250000 images; an .npz may hold at most 200000",
    ),
    "eval: samples that are not a zip, for ring8": (
        lambda t: eval_of(t, not_a_zip, "ring8"),
        [],
        "s.npz is not a readable .npz",
    ),
    "eval: string points for ring8": (
        lambda t: eval_of(t, string_points, "ring8"),
        [],
        "holds <U3 values; expected a numeric array",
    ),
    # -- class-conditional models and samples (#15) -------------------------------------------
    "conditional metric on an unconditional model": (
        lambda t: cond_suite(t, "- name: copier\n"),
        [],
        "metric 'label_match' needs class-conditional samples; models[copier] (copier) is "
        "unconditional (no num_classes)",
    ),
    "conditional metric on a samples file without labels": (
        lambda t: labelled_samples(t, None),
        [],
        "s.npz holds no labels: save them in the .npz",
    ),
    "conditional metric with fewer than 2 samples per class": (
        lambda t: cond_suite(
            t,
            "- name: cc\n  model: cond-copier\n",
            COND_BASE.replace("n_samples: 50", "n_samples: 19"),
        ),
        [],
        "needs at least 2 samples of each of 'digits''s 10 classes: set n_samples to at least 20",
    ),
    "conditional model with another number of classes": (
        lambda t: cond_suite(t, "- name: cc\n  model: cond-copier\n  options: {num_classes: 5}\n"),
        [],
        "model ConditionalCopier has num_classes=5 and dataset 'digits' has 10 classes",
    ),
    "conditional model on a dataset without labels": (
        lambda t: write_folder_dataset(t, 8, model="cond-copier"),
        [],
        "model ConditionalCopier is class-conditional (num_classes) and dataset",
    ),
    "model that sets num_classes without declaring it": (
        lambda t: cond_suite(t, "- name: u\n  model: plugin_models:UndeclaredConditional\n"),
        [],
        "sets num_classes without declaring it",
    ),
    "samples labels out of range": (
        lambda t: labelled_samples(t, np.arange(60) % 12),
        [],
        "holds label 10; dataset 'digits' has classes 0..9",
    ),
    "samples labels of the wrong length": (
        lambda t: labelled_samples(t, np.arange(50) % 10),
        [],
        "holds 50 labels for 60 samples",
    ),
    "samples labels that are not integers": (
        lambda t: labelled_samples(t, (np.arange(60) % 10) / 1.0),
        [],
        "holds float64 of shape (60,); labels are a 1-D integer array",
    ),
    "samples labels out of range, unconditional metrics only": (
        lambda t: labelled_samples(t, -np.ones(60, np.int64), BASE),
        [],
        "holds label -1",
    ),
    "conditional metric on an unconditional plug-in model": (
        lambda t: cond_suite(t, "- name: m\n  model: plugin_models:MeanModel\n"),
        [],
        "models[m] (plugin_models:MeanModel) is unconditional (no num_classes)",
    ),
    "labels: for a suite of a plug-in unconditional model": (
        lambda t: suite_with(
            t,
            BASE.replace("- name: copier", "- name: m\n    model: plugin_models:MeanModel")
            + "labels: train\n",
        ),
        [],
        "labels: train applies to class-conditional models and no entry of this suite is one",
    ),
    "labels: for a suite without a conditional model": (
        lambda t: suite_with(t, BASE + "labels: train\n"),
        [],
        "labels: train applies to class-conditional models and no entry of this suite is one",
    ),
    "unknown label mode": (
        lambda t: suite_with(t, BASE + "labels: uniform\n"),
        [],
        "labels: Input should be 'balanced' or 'train'",
    ),
    # -- statistics files of `genbench fid` (#26 item 3) ---------------------------------------
    "fid: pytorch-fid statistics in the clean mode": (
        lambda t: fid_against(t, lambda p: stats_npz(p, np.zeros(8), np.eye(8))),
        [],
        "ref.npz has no genbench protocol record, so it is pytorch-fid's --save-stats "
        "(Inception, legacy resize); this comparison uses mode clean: the numbers are not "
        "comparable: pass --mode legacy",
    ),
    "fid: statistics files of different weights": (
        lambda t: fid_of_two_stats(
            t, INCEPTION_CLEAN, {**INCEPTION_CLEAN, "weights_sha256": "cd" * 32}
        ),
        [],
        "b.npz was made with weights sha256 cdcdcdcdcdcd..., ",
    ),
    # -- covariances that gave a silent, wrong FID (#34 item 5) --------------------------------
    "fid: statistics with a sigma that is not symmetric": (
        lambda t: fid_against(t, lambda p: stats_npz(p, np.zeros(8), np.triu(np.ones((8, 8))))),
        [],
        "ref.npz: 'sigma' is not symmetric: entries differ from their transposes by up to 1",
    ),
    "fid: statistics with a negative definite sigma": (
        lambda t: fid_against(t, lambda p: stats_npz(p, np.zeros(8), -0.05 * np.eye(8))),
        [],
        "ref.npz: 'sigma' has the eigenvalue -0.05 (its largest is -0.05); a covariance has none",
    ),
    # -- statistics files that crashed or inflated (#34 item 7) --------------------------------
    "fid: statistics header declaring a sigma past the size limit": (
        lambda t: fid_against(t, huge_sigma),
        [],
        "ref.npz: 'sigma' is 8193 x 8193; statistics hold at most 8192-d features",
    ),
    "fid: statistics whose mu and sigma disagree": (
        lambda t: fid_against(t, lambda p: stats_npz(p, np.zeros(3), np.eye(4))),
        [],
        "ref.npz: 'mu' must be (d,) and 'sigma' (d, d), got (3,) and (4, 4)",
    ),
    "fid: statistics record with a weights_sha256 that is not a string": (
        lambda t: fid_of_two_stats(t, {**INCEPTION_CLEAN, "weights_sha256": 5}, INCEPTION_CLEAN),
        [],
        "a.npz: its genbench_protocol record's weights_sha256 must be a string or null, got int",
    ),
    "study name that is a path": (
        lambda t: ["study", "--out", str(t / "out"), "--name", "../elsewhere", "--score"],
        [],
        "--name '../elsewhere': a study name is 1 to 64 letters, digits",
    ),
    "unknown study references choice": (
        lambda t: ["study", "--out", str(t / "out"), "--references", "some", "--score"],
        [],
        "--references must be one, all or none, got 'some'",
    ),
    # -- weights files the metrics load, missing: every job trained, then failed (#26 item 2) -
    "fd_dinov2_vitl14 without its weights file": (
        lambda t: suite_with(t, BASE.replace("[fd_pixels]", "[fd_dinov2_vitl14]")),
        [],
        "no DINOv2 vitl14 weights: looked for {tmp}/torch/hub/checkpoints/dinov2_vitl14_pretrain"
        ".pth; on a machine with internet download https://dl.fbaipublicfiles.com/dinov2/"
        "dinov2_vitl14/dinov2_vitl14_pretrain.pth and copy it to {tmp}/torch/hub/checkpoints/"
        "dinov2_vitl14_pretrain.pth here (or give its path in the suite: weights: "
        "{dinov2_vitl14: PATH})",
    ),
    "cmmd without the CLIP weights file": (
        lambda t: suite_with(t, BASE.replace("[fd_pixels]", "[fd_pixels, cmmd]")),
        [],
        "no CLIP ViT-L/14@336px weights: looked for {tmp}/torch/hub/checkpoints/ViT-L-14-336px"
        ".pt, {tmp}/torch/hub/checkpoints/clip-vit-l-14-336px-3035c92b",
    ),
    "cmmd without the CLIP weights file, the fix for run": (
        lambda t: suite_with(t, BASE.replace("[fd_pixels]", "[cmmd]")),
        [],
        "(or give its path in the suite: weights: {clip_vitl14_336: PATH})",
    ),
    "fd in features: [dinov2_vitb14] without its weights file": (
        lambda t: suite_with(
            t, BASE.replace("[fd_pixels]", "[fd, kid]") + "features: [dinov2_vitb14]\n"
        ),
        [],
        "no DINOv2 vitb14 weights: looked for",
    ),
    "fd_dinov2_vits14 on an image dataset beside a point dataset": (
        lambda t: suite_with(
            t,
            BASE.replace("[fd_pixels]", "[fd_dinov2_vits14]").replace(
                "[digits]", "[ring8, digits]"
            ),
        ),
        [],
        "weights: {dinov2_vits14: PATH}",
    ),
    # -- weights files that do not hold the network: every job trained, then failed (#34 item 6)
    "DINOv2 weights of other tensors": (
        lambda t: weights_suite(
            t, "fd_dinov2_vits14", "dinov2_vits14", {"encoder.w": torch.ones(3)}
        ),
        [],
        "w.pth does not hold DINOv2 vits14 weights: 175 tensors missing (blocks.0.attn.proj.bias",
    ),
    "DINOv2 vits14 weights given for vitb14": (
        dinov2_of_another_size,
        [],
        "w.pth does not hold DINOv2 vitb14 weights: cls_token has shape (1, 1, 384), expected "
        "(1, 1, 768)",
    ),
    "DINOv2 weights file that is not a checkpoint": (
        lambda t: weights_suite(t, "kid_dinov2_vits14", "dinov2_vits14", data=b"not weights"),
        [],
        "w.pth as DINOv2 vits14 weights",
    ),
    "DINOv2 file in the torch hub cache that is not a checkpoint": (
        lambda t: dinov2_in_the_hub_cache(t, b"not weights"),
        [],
        "cannot read {tmp}/torch/hub/checkpoints/dinov2_vits14_pretrain.pth as DINOv2 vits14",
    ),
    "DINOv2 weights that would run code": (
        lambda t: weights_suite(
            t, "fd_dinov2_vits14", "dinov2_vits14", {"cls_token": _Payload(t / "payload-ran")}
        ),
        [],
        "cannot read",
    ),
    "CLIP weights of other tensors": (
        lambda t: weights_suite(t, "cmmd", "clip_vitl14_336", {"encoder.w": torch.ones(3)}),
        [],
        "w.pth does not hold CLIP ViT-L/14@336px weights: 296 tensors missing",
    ),
    "CLIP weights of a smaller tower": (
        small_clip_tower,
        [],
        "w.pth holds a CLIP image tower with width 64, 2 layers, patch 14, 56px, embedding 32; "
        "CLIP ViT-L/14@336px needs width 1024, 24 layers",
    ),
    # -- LPIPS' VGG16 (ppl_lpips_vgg16, the translation metric lpips): like DINOv2's file ------
    "ppl_lpips_vgg16 without the VGG16 weights file": (
        lambda t: suite_with(t, BASE.replace("[fd_pixels]", "[ppl_lpips_vgg16]")),
        [],
        "no VGG16 weights: looked for {tmp}/torch/hub/checkpoints/vgg16-397923af.pth; on a "
        "machine with internet download https://download.pytorch.org/models/vgg16-397923af.pth "
        "and copy it to {tmp}/torch/hub/checkpoints/vgg16-397923af.pth here (or give its path "
        "in the suite: weights: {lpips_vgg16: PATH})",
    ),
    "lpips on a paired task without the VGG16 weights file": (
        lambda t: suite_with(t, PAIRED.replace("[fd_pixels]", "[psnr, lpips]")),
        [],
        "no VGG16 weights: looked for {tmp}/torch/hub/checkpoints/vgg16-397923af.pth",
    ),
    "VGG16 weights of other tensors": (
        lambda t: weights_suite(t, "ppl_lpips_vgg16", "lpips_vgg16", {"encoder.w": torch.ones(3)}),
        [],
        "w.pth does not hold VGG16 weights: 32 tensors missing (classifier.0.bias, "
        "classifier.0.weight, classifier.3.bias), 1 unexpected (encoder.w)",
    ),
    "VGG16 weights with a layer of another width": (
        vgg16_of_another_width,
        [],
        "w.pth does not hold VGG16 weights: features.0.weight has shape (32, 3, 3, 3), expected "
        "(64, 3, 3, 3)",
    ),
    "VGG16 weights that would run code": (
        lambda t: weights_suite(
            t, "ppl_lpips_vgg16", "lpips_vgg16", {"features.0.weight": _Payload(t / "payload-ran")}
        ),
        [],
        "cannot read",
    ),
    "lpips_vgg16 in features:": (
        lambda t: suite_with(t, BASE.replace("[fd_pixels]", "[fd]") + "features: [lpips_vgg16]\n"),
        [],
        "'lpips_vgg16' is no feature space (only the metrics that name it use it): drop it from "
        "features / --features",
    ),
    "stats in the lpips_vgg16 network": (
        lambda t: ["stats", "digits", "--out", str(t / "s.npz"), "--features", "lpips_vgg16"],
        [],
        "'lpips_vgg16' is no feature space",
    ),
    "fd in the lpips_vgg16 network": (
        lambda t: suite_with(t, BASE.replace("[fd_pixels]", "[fd_lpips_vgg16]")),
        [],
        "unknown metric 'fd_lpips_vgg16'",
    ),
    # -- non-finite model options: NaN samples reached the leaderboard (#34 item 4) ----------
    "guidance .nan": (
        lambda t: cond_suite(t, "- name: c\n  model: cddpm\n  options: {guidance: .nan}\n", BASE),
        [],
        "option 'guidance': nan is not a finite number",
    ),
    "guidance .inf": (
        lambda t: cond_suite(t, "- name: c\n  model: cddpm\n  options: {guidance: .inf}\n", BASE),
        [],
        "option 'guidance': inf is not a finite number",
    ),
    "ema .nan": (
        lambda t: cond_suite(t, "- name: d\n  model: ddpm\n  options: {ema: .NaN}\n", BASE),
        [],
        "option 'ema': nan is not a finite number",
    ),
    "lr -.inf": (
        lambda t: cond_suite(t, "- name: d\n  model: ddpm\n  options: {lr: -.inf}\n", BASE),
        [],
        "option 'lr': -inf is not a finite number",
    ),
    "NaN in a list option": (
        lambda t: cond_suite(
            t, "- name: g\n  model: cdcgan\n  options: {betas: [0.5, .nan]}\n", BASE
        ),
        [],
        "option 'betas': nan is not a finite number",
    ),
    "inf in a mapping option": (
        lambda t: suite_with(t, BASE + "    options: {scale: {r: 1.0, g: .inf}}\n"),
        [],
        "option 'scale': inf is not a finite number",
    ),
    "-inf in a list in a mapping option": (
        lambda t: suite_with(t, BASE + "    options: {ranges: {r: [0, -.Inf]}}\n"),
        [],
        "option 'ranges': -inf is not a finite number",
    ),
    "NaN option of a plug-in model": (
        lambda t: cond_suite(
            t, "- name: m\n  model: plugin_models:MeanModel\n  options: {shift: .nan}\n", BASE
        ),
        [],
        "option 'shift': nan is not a finite number",
    ),
    # -- plug-in modules that fail to import or are not module names (#34 item 7) -----------
    "plug-in module with a syntax error": (
        lambda t: plugin_module(t, "def broken(:\n"),
        [],
        "plug-in module 'broken_plugin': importing it raised SyntaxError: invalid syntax",
    ),
    "plug-in module that raises on import": (
        lambda t: plugin_module(t, "raise RuntimeError('no GPU driver here')\n"),
        [],
        "plug-in module 'broken_plugin': importing it raised RuntimeError: no GPU driver here",
    ),
    "model module that raises on import": (
        lambda t: plugin_module(t, "raise RuntimeError('no GPU driver here')\n", "model"),
        [],
        "model 'broken_plugin:Model': module 'broken_plugin': importing it raised RuntimeError",
    ),
    "model module with a syntax error": (
        lambda t: plugin_module(t, "class Model(\n", "model"),
        [],
        "model 'broken_plugin:Model': module 'broken_plugin': importing it raised SyntaxError",
    ),
    "plug-in module named '..rel'": (
        lambda t: suite_with(t, BASE + "plugins: ['..rel']\n"),
        [],
        "plug-in module '..rel' is not an absolute module name",
    ),
    "plug-in module named '.x'": (
        lambda t: suite_with(t, BASE + "plugins: ['.x']\n"),
        [],
        "plug-in module '.x' is not an absolute module name",
    ),
    "plug-in module named ''": (
        lambda t: suite_with(t, BASE + "plugins: ['']\n"),
        [],
        "plug-in module '' is not an absolute module name",
    ),
    "model in a relative module": (
        lambda t: suite_with(t, BASE.replace("- name: copier", "- name: m\n    model: .x:Model")),
        [],
        "model '.x:Model': module '.x' is not an absolute module name",
    ),
    # -- what hung or wrote before refusing (#34 item 8, #26 item 8) --------------------------
    # -- image files whose decoder raised a traceback (#34 item 7) -----------------------------
    "eval: a PNG whose header says 20000x10000": (
        lambda t: samples_folder_with(t, "z.png", png_declaring(20000, 10000)),
        [],
        "z.png is not a readable image (DecompressionBombError: Image size (200000000 pixels)",
    ),
    "eval: a PNG just past the pixel limit": (
        lambda t: samples_folder_with(t, "z.png", png_declaring(4097, 4096)),
        [],
        "z.png is 4097x4096; an image may have at most 16,777,216 pixels",
    ),
    "eval: a BMP with a bad palette size": (
        lambda t: samples_folder_with(t, "z.bmp", bmp_with_palette_size(100000)),
        [],
        "z.bmp is not a readable image (OSError: Unsupported BMP Palette size (100000))",
    ),
    "eval: a truncated PNG": (
        lambda t: samples_folder_with(t, "z.png", png_declaring(8, 8)[:40]),
        [],
        "z.png is not a readable image",
    ),
    "eval: samples folder holding a FIFO": (
        lambda t: ["eval", "--samples", str(fifo_samples_folder(t)), "--dataset", "digits"],
        [],
        "z.png is not a regular file; remove it from the image folder",
    ),
    "run: samples folder holding a FIFO": (
        lambda t: fifo_samples_folder(t) and model_entry(t, "- name: s\n  samples: s\n"),
        [],
        "z.png is not a regular file; remove it from the image folder",
    ),
    "throughput: a model option that is NaN": (
        lambda t: [
            "throughput",
            "--model",
            "pixel-gaussian",
            "--dataset",
            "digits",
            "--options",
            '{"temperature": NaN}',
        ],  # fmt: skip
        [],
        "--options: option 'temperature': nan is not a finite number",
    ),
    "sqlite tracking uri naming a folder": (
        lambda t: store_path_of(t, lambda p: p.mkdir()),
        ["--tracking-uri", "sqlite:///{tmp}/store"],
        "store is a folder; name a database file, e.g. sqlite:///",
    ),
    "sqlite tracking uri naming a FIFO": (
        lambda t: store_path_of(t, os.mkfifo),
        ["--tracking-uri", "sqlite:///{tmp}/store"],
        "store is not a file; name a database file, e.g. sqlite:///PATH.db",
    ),
    "report compared with a folder that does not exist": (
        report_compared_with_a_missing_folder,
        [],
        "before: no MLflow store at",
    ),
    # -- the human study (#34) ------------------------------------------------------------------
    "study staircase moving after every trial": (
        lambda t: ["study", "--out", str(t / "out"), "--mode", "time", "--block", "1", "--score"],
        [],
        "--block must be at least 2, got 1",
    ),
    "study name with a slash": (
        lambda t: ["study", "--out", str(t / "out"), "--name", "a/b", "--score"],
        [],
        "--name 'a/b': a study name is 1 to 64 letters, digits",
    ),
    "study samples label with a newline": (
        lambda t: study_of_samples(t, "a\nb=s.npz"),
        [],
        "--samples 'a\\nb=s.npz': its label 'a\\nb' may hold only letters, digits",
    ),
    "study samples labelled real": (
        lambda t: study_of_samples(t, "real=s.npz"),
        [],
        "--samples 'real=s.npz': the label 'real' names the study's real images",
    ),
    "animal-mnist wheel whose pickle runs code": (
        write_animal_mnist_payload,
        ["--data-root", "{tmp}"],
        "is not a pickled array (refused global",
    ),
    # -- the study's quality controls (#26) -----------------------------------------------------
    "study with fewer than no attention checks": (
        lambda t: ["study", "--out", str(t / "out"), "--attention", "-1", "--score"],
        [],
        "--attention must be at least 0, got -1",
    ),
    "study with a negative minimum response time": (
        lambda t: ["study", "--out", str(t / "out"), "--min-rt-ms", "-5", "--score"],
        [],
        "--min-rt-ms must be at least 0, got -5",
    ),
    "study allowing as many missed checks as it has": (
        lambda t: ["study", "--out", str(t / "out"), "--attention", "2", "--max-missed", "2"],
        [],
        "--max-missed 2 excludes nobody with --attention 2",
    ),
    # -- a baseline's own check of an option's value (#29) ---------------------------------
    "glow temperature 0": (
        lambda t: model_entry(t, "- name: g\n  model: glow\n  options: {temperature: 0}\n"),
        [],
        "glow: temperature must be a number > 0",
    ),
    "acgan aux_weight below 0": (
        lambda t: cond_suite(t, "- name: a\n  model: acgan\n  options: {aux_weight: -1}\n", BASE),
        [],
        "acgan: aux_weight must be a number >= 0, not -1",
    ),
    # -- stylegan's sampling options (#29) -------------------------------------------------------
    "stylegan truncation above 1": (
        lambda t: model_entry(t, "- name: s\n  model: stylegan\n  options: {truncation: 1.5}\n"),
        [],
        "stylegan: truncation (psi) must be a number in [0, 1] (1: none), not 1.5",
    ),
    "stylegan noise mode it does not have": (
        lambda t: model_entry(t, "- name: s\n  model: stylegan\n  options: {noise: none}\n"),
        [],
        "stylegan: noise must be 'random' or 'const', not 'none'",
    ),
    # -- disentanglement (#30) -------------------------------------------------------------------
    "disentanglement metric on a dataset without known factors": (
        lambda t: suite_with(t, BASE.replace("[fd_pixels]", "[mig]")),
        [],
        "metric 'mig' needs a dataset with known generating factors (e.g. shapes)",
    ),
    # -- real models in (#32) ---------------------------------------------------------------------
    "torchscript model that is a pickled nn.Module": (
        pickled_generator,
        [],
        "g.pt is a pickled nn.Module (torch.save), and loading a pickle can run any code",
    ),
    "exported generator file that does not exist": (
        lambda t: model_entry(
            t, f"- name: g\n  model: onnx:g.onnx\n  options: {EXPORTED_OPTIONS}\n"
        ),
        [],
        "models[g].model: {tmp}/g.onnx not found",
    ),
    "diffusers folder with pickle weights": (
        lambda t: pipeline_folder(t, DDPM_INDEX, {"unet/diffusion_pytorch_model.bin": b"\x80"}),
        [],
        "unet/diffusion_pytorch_model.bin is a pickle-format weights file",
    ),
    "diffusers folder of an unknown pipeline class": (
        lambda t: pipeline_folder(t, {**DDPM_INDEX, "_class_name": "StableDiffusionPipeline"}, {}),
        [],
        "pipeline class 'StableDiffusionPipeline' is not supported; supported: DDPMPipeline",
    ),
    "diffusers folder with a component of another library": (
        lambda t: pipeline_folder(t, {**DDPM_INDEX, "unet": ["my_models", "Net"]}, {}),
        [],
        "component 'unet' is ['my_models', 'Net']; genbench loads only diffusers' own components",
    ),
    "diffusers model that is not a folder": (
        lambda t: (
            (t / "p.safetensors").write_bytes(b"{}")
            and model_entry(t, "- name: p\n  model: diffusers:p.safetensors\n")
        ),
        [],
        "p.safetensors: not a local folder; give a folder saved with pipeline.save_pretrained",
    ),
    "eval with both --samples and --model": (
        lambda t: ["eval", "--dataset", "digits", "--samples", "s.npz", "--model", "onnx:g.onnx"],
        [],
        "give --samples FILE or --model PREFIX:PATH (one of them)",
    ),
    "eval --model of a model that must be trained": (
        lambda t: ["eval", "--dataset", "digits", "--model", "dcgan"],
        [],
        "eval --model 'dcgan': it must be trained first",
    ),
    "eval_metrics without eval_every": (
        lambda t: suite_with(t, BASE + "eval_metrics: [fd_pixels]\n"),
        [],
        "eval_metrics applies with eval_every: set eval_every (steps)",
    ),
    "in-training metric that cannot run on eval_n samples": (
        lambda t: suite_with(t, BASE + "eval_every: 1\neval_metrics: [fdinf_pixels]\neval_n: 20\n"),
        [],
        "fdinf",
    ),
    "generation model on a translation task": (
        lambda t: suite_with(t, BASE.replace("[digits]", "[edges2mnist]")),
        [],
        "model 'copier' generates images and 'edges2mnist' is a translation task",
    ),
    "translation model on a generation dataset": (
        lambda t: suite_with(t, BASE.replace("name: copier", "name: identity")),
        [],
        "model 'identity' translates images and 'digits' is not a translation task",
    ),
    "paired translation model on an unpaired task": (
        lambda t: suite_with(
            t, BASE.replace("[digits]", "[digits2mnist]").replace("name: copier", "name: oracle")
        ),
        [],
        "model 'oracle' learns from paired images and 'digits2mnist' is unpaired",
    ),
    "translation metric on a generation dataset": (
        lambda t: suite_with(t, BASE.replace("[fd_pixels]", "[psnr]")),
        [],
        "metric 'psnr' scores translations and 'digits' is not a translation task",
    ),
    "more translations than the source test split holds": (
        lambda t: suite_with(
            t,
            BASE.replace("[digits]", "[digits2mnist]")
            .replace("n_samples: 50", "n_samples: 400")
            .replace("name: copier", "name: identity"),
        ),
        [],
        "dataset 'digits2mnist': n_samples=400 and its source test split holds 359 images",
    ),
    # -- translations with the source test row of each (#31) ------------------------------------
    "source_indices of floats": (
        lambda t: translations_with_indices(t, np.arange(60.0)),
        [],
        "['source_indices'] holds float64 of shape (60,); source indices are a 1-D integer",
    ),
    "source_indices of two columns": (
        lambda t: translations_with_indices(t, np.zeros((60, 2), np.int64)),
        [],
        "['source_indices'] holds int64 of shape (60, 2); source indices are a 1-D integer",
    ),
    "fewer source_indices than translations": (
        lambda t: translations_with_indices(t, np.arange(59)),
        [],
        "['source_indices'] holds 59 source indices for 60 translations",
    ),
    "source index outside the source test split": (
        lambda t: translations_with_indices(t, np.arange(60) + 950),
        [],
        "['source_indices'] holds index 1000; the source test split of 'edges2mnist' has rows "
        "0..999",
    ),
    "source index given twice": (
        lambda t: translations_with_indices(t, np.r_[np.arange(59), 7]),
        [],
        "['source_indices'] holds index 7 2 times; translate each source image once",
    ),
    "eval: source index given twice": (
        lambda t: eval_of(
            t, lambda p: translations_file(p, np.r_[np.arange(59), 7]), "edges2mnist"
        ),
        [],
        "['source_indices'] holds index 7 2 times; translate each source image once",
    ),
    "source_indices on a generation dataset": (
        lambda t: translations_with_indices(t, np.arange(60), "mnist5k"),
        [],
        "['source_indices']: dataset 'mnist5k' is not a translation task",
    ),
    "model entry on a dataset the suite lacks": (
        lambda t: suite_with(t, BASE + "    datasets: [mnist5k]\n"),
        [],
        "models[copier].datasets: 'mnist5k' is not one of the suite's datasets (digits)",
    ),
    # -- suite files name their executor (#27) ---------------------------------------------------
    "suite executor that is not registered": (
        lambda t: suite_with(t, BASE + "executor: {name: dask}\n"),
        [],
        "unknown executor 'dask'; choose one of: local, ray, slurm",
    ),
    "suite executor option the executor does not declare": (
        lambda t: suite_with(t, BASE + "executor: {name: ray, options: {nodes: 2}}\n"),
        [],
        "executor: options.nodes: name an option of executor 'ray' (address,",
    ),
    "suite executor option of the wrong type": (
        lambda t: suite_with(t, BASE + "executor: {name: local, options: {jobs: many}}\n"),
        [],
        "executor: options.jobs: jobs takes int values",
    ),
}

# Every case runs under this much heap: a bad input must be refused, not fill the machine.
MEMORY_LIMIT = 3 * 2**30
CPU_SECONDS_LIMIT = 300


def limit_resources() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS_LIMIT, CPU_SECONDS_LIMIT))


def refuse(tmp_path, case: str, env: dict | None = None):
    """Run the case's command on its bad input; the finished process."""
    make, extra, _ = CASES[case]
    made = make(tmp_path)
    args = [a.format(tmp=tmp_path) for a in extra]
    if isinstance(made, list):  # a command of its own (not `genbench run`)
        command = made
    else:
        out = [] if "--out" in args else ["--out", str(tmp_path / "out")]
        command = ["run", made, *out]
    return run_cli(
        *command,
        *args,
        # no weights file outside the test's folder (DINOv2, CLIP) is found
        env={"TORCH_HOME": str(tmp_path / "torch"), "HOME": str(tmp_path / "home"), **(env or {})},
        cwd=tmp_path,
        preexec_fn=limit_resources,
    )


def expected(tmp_path, case: str) -> str:
    """The case's expected text, {tmp} standing for the test's folder."""
    return CASES[case][2].replace("{tmp}", str(tmp_path))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(tmp_path, case):
    res = refuse(tmp_path, case)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1, res.stderr
    assert expected(tmp_path, case) in lines[0] and "Traceback" not in res.stderr
    assert lines[0].startswith("genbench: error: ")
    assert not (tmp_path / "out").exists()  # nothing created for a rejected run
    assert not (tmp_path / "payload-ran").exists()  # nothing in a data file ran
    assert not (tmp_path / "mlruns").exists()  # nothing written into the working folder


# Refused before torch is imported (two seconds on some CPUs, #18 item 10) but for these:
# a plug-in model's own module imports torch, and a `module:Class` model is looked up only
# after genbench's own plug-ins (which import torch) are loaded.
NEED_TORCH = {
    "eval --model of a model that must be trained",  # a baseline's module imports torch
    # a metric's own check of n (FD-infinity's 16·d) runs in preflight, with the metric loaded
    "in-training metric that cannot run on eval_n samples",
    "checkpoint does not match",
    "truncated checkpoint",
    "model that sets num_classes without declaring it",
    "conditional metric on an unconditional plug-in model",
    "labels: for a suite of a plug-in unconditional model",
    "model module that raises on import",
    "model module with a syntax error",
    "model in a relative module",
    # what a weights file holds is told by torch (DINOv2's layout comes from timm's network)
    "DINOv2 weights of other tensors",
    "DINOv2 vits14 weights given for vitb14",
    "DINOv2 weights file that is not a checkpoint",
    "DINOv2 file in the torch hub cache that is not a checkpoint",
    "DINOv2 weights that would run code",
    "CLIP weights of other tensors",
    "CLIP weights of a smaller tower",
    "VGG16 weights of other tensors",
    "VGG16 weights with a layer of another width",
    "VGG16 weights that would run code",
    # `stats` loads bench.fid (torch) before it looks at --features
    "stats in the lpips_vgg16 network",
    # a baseline checks its options' values when it is built (by the runner, before training)
    "glow temperature 0",
    "acgan aux_weight below 0",
    "stylegan truncation above 1",
    "stylegan noise mode it does not have",
    # whether a model translates or generates is told by its class's methods
    "generation model on a translation task",
    "translation model on a generation dataset",
    "paired translation model on an unpaired task",
}


@pytest.mark.parametrize("case", [c for c in CASES if c not in NEED_TORCH])
def test_refused_before_torch_loads(tmp_path, case):
    blocker = tmp_path / "no-torch" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch was imported')\n")
    path = os.pathsep.join(map(str, [blocker.parent, TESTS, ROOT]))
    res = refuse(tmp_path, case, env={"PYTHONPATH": path})
    assert res.returncode == 2 and expected(tmp_path, case) in res.stderr, res.stderr
