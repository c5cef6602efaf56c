"""`model: diffusers:PATH`: a diffusers image pipeline saved with `save_pretrained` in a local
folder (`pip install genbench[diffusers]`), sampled as the pipeline samples.

Supported pipelines and the schedulers each samples correctly (its loop draws every random
number from the job's generator and needs no initial-noise scaling):
  DDPMPipeline  ddpm, ddim, dpm-solver++ (unconditional)
  DDIMPipeline  ddim (the pipeline makes any scheduler DDIM), with `eta`
  DiTPipeline   ddim, dpm-solver++ (class-conditional, `guidance`; its transformer's classes
                must be the dataset's)
Euler-type schedulers scale the initial noise by init_noise_sigma, which these pipelines'
loops do not do: they are refused rather than sampled wrongly.

Safety, checked from the folder's JSON before diffusers is imported: a local folder only
(nothing is downloaded), a pipeline and components of the allowlists below from the diffusers
library (a custom pipeline or component would run the folder's code; trust_remote_code is
never passed), and weights in .safetensors only: a folder holding any pickle-format file
(.bin, .pt, .pth, .ckpt, .pkl) is refused, since unpickling can run any code.

Sampling options (one loaded folder serves a sweep): `scheduler`, `steps` (default the
pipeline's), `eta` (DDIMPipeline), `guidance` (DiTPipeline, default 4.0 as diffusers).
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.errors import UserError
from bench.models import Budget, Progress, Spent, register_model_prefix

if TYPE_CHECKING:
    import torch

    from bench.data import ImageDataset

# pipeline -> (schedulers it samples correctly, default steps, class-conditional)
PIPELINES = {
    "DDPMPipeline": (("ddpm", "ddim", "dpm-solver++"), 1000, False),
    "DDIMPipeline": (("ddim",), 50, False),
    "DiTPipeline": (("ddim", "dpm-solver++"), 50, True),
}
SCHEDULERS = {  # option -> (class, config overrides)
    "ddpm": ("DDPMScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "dpm-solver++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
}
NEED_NOISE_SCALING = ("euler", "euler-ancestral", "heun", "lms", "dpm-sde", "kdpm2")
COMPONENTS = {"UNet2DModel", "Transformer2DModel", "DiTTransformer2DModel", "AutoencoderKL"}
COMPONENTS |= {cls for cls, _ in SCHEDULERS.values()}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
MAX_INDEX_BYTES = 64 * 2**10


@register_model_prefix("diffusers")
class DiffusersPipeline:
    """A diffusers pipeline from a local folder; safetensors weights only, allowlisted classes."""

    pretrained = True  # the folder holds the trained model: genbench never fits it
    source_path: str | None = None  # set by bind
    pipeline_class = ""
    provenance: dict[str, str] = {}
    SAMPLE_OPTIONS = ("scheduler", "steps", "eta", "guidance")

    @classmethod
    def check(cls, arg: str) -> dict:
        """The folder's model_index.json, the folder checked from its files alone (neither
        torch nor diffusers imported)."""
        return read_index(Path(arg), f"model diffusers:{arg}")

    @classmethod
    def bind(cls, arg: str) -> type:
        """The class of one folder, checked from its files alone (nothing imported)."""
        path = Path(arg)
        index = cls.check(arg)
        pipeline = index["_class_name"]
        facts = {
            "source_path": str(path.resolve()),
            "pipeline_class": pipeline,
            "num_classes": None if PIPELINES[pipeline][2] else 0,
            "provenance": {
                "diffusers_version": installed_diffusers(),
                "pipeline": json.dumps(index, sort_keys=True),
                "scheduler": (path / "scheduler" / "scheduler_config.json").read_text()[:6000]
                if (path / "scheduler" / "scheduler_config.json").is_file()
                else "",
            },
        }
        return type(cls.__name__, (cls,), {**facts, "__module__": cls.__module__})

    def __init__(
        self,
        shape: tuple[int, ...],
        scheduler: str | None = None,
        steps: int | None = None,
        eta: float = 0.0,
        guidance: float | None = None,
        num_classes: int | None = None,
        device: str = "cpu",
    ):
        if self.source_path is None:
            raise UserError("give the pipeline's folder as model: diffusers:PATH")
        self.what = f"model diffusers:{self.source_path}"
        allowed, default_steps, conditional = PIPELINES[self.pipeline_class]
        self.scheduler_name = check_options(
            self.what, self.pipeline_class, scheduler, eta, guidance
        )
        if scheduler is not None and scheduler not in allowed:
            raise UserError(
                f"{self.what}: scheduler {scheduler!r} with {self.pipeline_class}; choose one "
                f"of: {', '.join(allowed)}"
            )
        if steps is not None and (
            isinstance(steps, bool) or not isinstance(steps, int) or steps < 1
        ):
            raise UserError(f"{self.what}: option steps={steps!r}; give a positive int")
        self.steps = steps or default_steps
        self.eta = float(eta)
        self.guidance = 4.0 if guidance is None else float(guidance)
        self.shape = tuple(shape)
        self.device = device
        self.num_classes = 0 if not conditional else num_classes
        if conditional and not num_classes:
            raise UserError(
                f"{self.what}: {self.pipeline_class} is class-conditional and the dataset has "
                "no class labels; use a labelled dataset"
            )
        self.pipe = load_pipeline(Path(self.source_path), self.pipeline_class, self.what)
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        if scheduler is not None:
            self.pipe.scheduler = make_scheduler(scheduler, self.pipe.scheduler.config)
        self.check_classes()
        uses_guidance = conditional and self.guidance > 1
        self.nfe = self.steps * (2 if uses_guidance else 1)
        self.sample_options = {
            "scheduler": type(self.pipe.scheduler).__name__,
            "steps": self.steps,
            **({"eta": self.eta} if self.pipeline_class == "DDIMPipeline" else {}),
            **({"guidance": self.guidance} if conditional else {}),
        }

    def check_classes(self) -> None:
        if not self.num_classes:
            return
        classes = self.pipe.transformer.config.num_embeds_ada_norm
        if classes != self.num_classes:
            raise UserError(
                f"{self.what}: its transformer has {classes} classes and the dataset "
                f"{self.num_classes}; score it on a dataset of its classes"
            )

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        return Spent(steps=0)

    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator,
        batch_size: int = 256,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, n, batch_size):
                b = min(batch_size, n - i)
                y = None if labels is None else labels[i : i + b]
                out.append(self.call(b, generator, y))
        return torch.cat(out)

    def call(self, b: int, generator: torch.Generator, labels: torch.Tensor | None):
        """The pipeline's own call; its float [0, 1] NHWC output as uint8 NCHW images."""
        kwargs = {"generator": generator, "num_inference_steps": self.steps, "output_type": "np"}
        if self.pipeline_class == "DDIMPipeline":
            kwargs["eta"] = self.eta
        if labels is not None:
            kwargs |= {"class_labels": labels.tolist(), "guidance_scale": self.guidance}
        else:
            kwargs["batch_size"] = b
        images = np.asarray(self.pipe(**kwargs).images)
        return to_uint8(images, self.shape, self.what)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, sd: dict) -> None:
        if sd:
            raise UserError(f"{self.what} holds its weights; give it no checkpoint")


def to_uint8(images: np.ndarray, shape: tuple[int, ...], what: str) -> torch.Tensor:
    import torch

    x = torch.from_numpy(images).float()
    if x.dim() == 3:
        x = x.unsqueeze(-1)
    x = x.permute(0, 3, 1, 2)
    if tuple(x.shape[1:]) != tuple(shape):
        raise UserError(
            f"{what} makes images of shape {tuple(x.shape[1:])}; the dataset's are {shape}"
        )
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def check_options(
    what: str, pipeline: str, scheduler: str | None, eta: float, guidance: float | None
) -> str | None:
    """One-line refusals for options the pipeline cannot honour."""
    if scheduler is not None and scheduler not in SCHEDULERS:
        if scheduler in NEED_NOISE_SCALING:
            raise UserError(
                f"{what}: scheduler {scheduler!r} scales the initial noise by "
                f"init_noise_sigma, which {pipeline} does not; choose one of: "
                f"{', '.join(PIPELINES[pipeline][0])}"
            )
        raise UserError(
            f"{what}: unknown scheduler {scheduler!r}; choose one of: {', '.join(SCHEDULERS)}"
        )
    if eta and pipeline != "DDIMPipeline":
        raise UserError(f"{what}: option eta applies to DDIMPipeline, not {pipeline}")
    if guidance is not None and not PIPELINES[pipeline][2]:
        raise UserError(
            f"{what}: option guidance applies to class-conditional pipelines, not {pipeline}"
        )
    return scheduler


def read_index(path: Path, what: str) -> dict:
    """The folder's model_index.json, checked against the allowlists, and its weights files
    checked to be safetensors; before anything is imported."""
    if not path.is_dir():
        raise UserError(
            f"{what}: not a local folder; give a folder saved with pipeline.save_pretrained "
            "(genbench downloads nothing)"
        )
    index_file = path / "model_index.json"
    if not index_file.is_file() or index_file.stat().st_size > MAX_INDEX_BYTES:
        raise UserError(
            f"{what}: no model_index.json (or one over 64 KiB); save the pipeline with "
            "save_pretrained"
        )
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{what}: model_index.json is not JSON ({e})") from None
    pipeline = index.get("_class_name") if isinstance(index, dict) else None
    if pipeline not in PIPELINES:
        raise UserError(
            f"{what}: pipeline class {pipeline!r} is not supported; supported: "
            f"{', '.join(PIPELINES)}"
        )
    for name, spec in index.items():
        if name.startswith("_"):
            continue
        if not (
            isinstance(spec, list)
            and spec[:1] == ["diffusers"]
            and spec[1:]
            and spec[1] in COMPONENTS
        ):
            raise UserError(
                f"{what}: component {name!r} is {spec!r}; genbench loads only diffusers' own "
                f"components: {', '.join(sorted(COMPONENTS))}"
            )
    refuse_pickles(path, what)
    return index


def refuse_pickles(path: Path, what: str) -> None:
    for f in sorted(path.rglob("*")):
        if f.suffix.lower() in PICKLE_SUFFIXES:
            raise UserError(
                f"{what}: {f.relative_to(path)} is a pickle-format weights file, and loading a "
                "pickle can run any code; save the pipeline with safe_serialization=True "
                "(.safetensors) and remove it"
            )


def installed_diffusers() -> str:
    try:
        return version("diffusers")
    except PackageNotFoundError:
        return ""


def load_pipeline(path: Path, pipeline: str, what: str):
    try:
        import diffusers
    except ImportError:
        raise UserError(f"{what} needs diffusers: pip install 'genbench[diffusers]'") from None
    diffusers.utils.logging.set_verbosity_error()  # its loading chatter is not genbench's
    diffusers.utils.logging.disable_progress_bar()
    try:
        return getattr(diffusers, pipeline).from_pretrained(
            str(path), local_files_only=True, use_safetensors=True
        )
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{what}: diffusers cannot load it ({reason})") from None


def make_scheduler(name: str, config) -> object:
    import diffusers

    cls, overrides = SCHEDULERS[name]
    return getattr(diffusers, cls).from_config(config, **overrides)
