"""`model: torchscript:G.pt`: a generator saved with torch.jit.script(G).save or
torch.jit.trace(G, z).save, called as G(z) or G(z, labels) (int64 classes; a file whose
forward takes two inputs is class-conditional and gets the dataset's classes).

Loading runs TorchScript, a restricted language interpreted by torch, and reads the file's
tensors with torch's own unpickler, which builds only tensors and TorchScript objects: no
Python code of the file runs. A file saved with torch.save(module) is a Python pickle, which
can run any code: it is refused before it is opened.

Options: z_dim (int or shape, required), output_range ("0,1" or "-1,1", required), layout
(NCHW or NHWC of the output, default NCHW). Latents are standard normal, drawn on the CPU
from the job's sampling seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import UserError
from bench.exported import (
    conditional_classes,
    output_spec,
    refuse_pickle,
    sample_batches,
    to_images,
)
from bench.models import Budget, Progress, Spent, register_model_prefix

if TYPE_CHECKING:
    import torch

    from bench.data import ImageDataset


@register_model_prefix("torchscript")
class TorchScriptGenerator:
    """An exported TorchScript generator (z[, labels] -> images); loading it runs no Python."""

    pretrained = True  # the file holds the trained generator: genbench never fits it
    source_path: str | None = None  # set by bind

    @classmethod
    def check(cls, arg: str) -> None:
        """Refuse a missing file or a pickle, without torch (nothing of the file is read but
        its first byte or zip directory)."""
        what = f"model torchscript:{arg}"
        if not Path(arg).is_file():
            raise UserError(f"{what}: no such file; give the path of a TorchScript .pt file")
        refuse_pickle(Path(arg), what)

    @classmethod
    def bind(cls, arg: str) -> type:
        """The class of one file: checked (not a pickle, a TorchScript archive), its forward's
        inputs counted (two: class-conditional)."""
        path = Path(arg)
        what = f"model torchscript:{arg}"
        cls.check(arg)
        inputs = forward_inputs(load(path, "cpu", what))
        if inputs not in (1, 2):
            raise UserError(
                f"{what}: its forward takes {inputs} inputs; an exported generator takes z, or "
                "z and labels"
            )
        facts = {"source_path": str(path.resolve()), "num_classes": None if inputs == 2 else 0}
        return type(cls.__name__, (cls,), {**facts, "__module__": cls.__module__})

    def __init__(
        self,
        shape: tuple[int, ...],
        z_dim: int | list[int],
        output_range: str,
        layout: str = "NCHW",
        num_classes: int | None = None,
        device: str = "cpu",
    ):
        if self.source_path is None:
            raise UserError("give the generator's file as model: torchscript:PATH")
        self.what = f"model torchscript:{self.source_path}"
        self.spec = output_spec(self.what, z_dim, output_range, layout)
        self.shape = tuple(shape)
        self.device = device
        # a conditional file (class attribute None) takes the dataset's classes
        self.num_classes = conditional_classes(self.what, type(self).num_classes, num_classes)
        self.net = load(Path(self.source_path), self.device, self.what)
        self.nfe = 1

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

        def call(z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
            args = (z.to(self.device),) if y is None else (z.to(self.device), y.to(self.device))
            return to_images(self.net(*args), self.spec, self.shape, self.what)

        with torch.no_grad():
            return torch.cat(sample_batches(n, batch_size, self.spec, generator, labels, call))

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, sd: dict) -> None:
        if sd:
            raise UserError(f"{self.what} holds its weights; give it no checkpoint")


def load(path: Path, device: torch.device | str, what: str) -> torch.jit.ScriptModule:
    import torch

    try:
        net = torch.jit.load(str(path), map_location=device)
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"{what}: not a TorchScript file ({reason}); save it with "
            "torch.jit.script(G).save(PATH)"
        ) from None
    return net.eval()


def forward_inputs(net: torch.jit.ScriptModule) -> int:
    """The inputs of the module's forward, self excluded."""
    return len(net.forward.schema.arguments) - 1
