"""`model: onnx:G.onnx`: a generator exported with torch.onnx.export (or any ONNX producer),
run by onnxruntime (`pip install genbench[onnx]`): inputs z, and labels (int64 or int32
classes) for a class-conditional one (a graph with two inputs gets the dataset's classes).

An ONNX file is a protobuf graph of standard operators that onnxruntime executes; it holds
no Python and loading it runs none.

Options: z_dim (int or shape, required), output_range ("0,1" or "-1,1", required), layout
(NCHW or NHWC of the output, default NCHW). Latents are standard normal, drawn on the CPU
from the job's sampling seed. On a CUDA device onnxruntime's CUDA provider runs it where
installed (onnxruntime-gpu), else its CPU provider.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.data import ImageDataset
from bench.errors import UserError
from bench.exported import conditional_classes, output_spec, sample_batches, to_images
from bench.models import Budget, Progress, Spent, register_model_prefix

ONNX_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
LABEL_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


@register_model_prefix("onnx")
class OnnxGenerator:
    """An exported ONNX generator (z[, labels] -> images) run by onnxruntime; no Python runs."""

    pretrained = True  # the file holds the trained generator: genbench never fits it
    source_path: str | None = None  # set by bind

    @classmethod
    def bind(cls, arg: str) -> type:
        """The class of one file: opened by onnxruntime, its inputs counted (two:
        class-conditional) and typed."""
        path = Path(arg)
        what = f"model onnx:{arg}"
        if not path.is_file():
            raise UserError(f"{what}: no such file; give the path of an .onnx file")
        inputs = session(path, "cpu", what).get_inputs()
        if len(inputs) not in (1, 2) or inputs[0].type not in ONNX_TYPES:
            raise UserError(
                f"{what}: its inputs are {[(i.name, i.type) for i in inputs]}; an exported "
                "generator takes float z, or float z and integer labels"
            )
        if len(inputs) == 2 and inputs[1].type not in LABEL_TYPES:
            raise UserError(f"{what}: its labels input is {inputs[1].type}; give int64 labels")
        facts = {
            "source_path": str(path.resolve()),
            "num_classes": None if len(inputs) == 2 else 0,
        }
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
            raise UserError("give the generator's file as model: onnx:PATH")
        self.what = f"model onnx:{self.source_path}"
        self.spec = output_spec(self.what, z_dim, output_range, layout)
        self.shape = tuple(shape)
        self.num_classes = conditional_classes(self.what, type(self).num_classes, num_classes)
        self.session = session(Path(self.source_path), device, self.what)
        self.inputs = [(i.name, i.type) for i in self.session.get_inputs()]
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
        def call(z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
            (z_name, z_type), *rest = self.inputs
            feed = {z_name: z.numpy().astype(ONNX_TYPES[z_type])}
            if y is not None:
                y_name, y_type = rest[0]
                feed[y_name] = y.numpy().astype(LABEL_TYPES[y_type])
            out = self.session.run(None, feed)[0]
            return to_images(torch.from_numpy(np.asarray(out)), self.spec, self.shape, self.what)

        return torch.cat(sample_batches(n, batch_size, self.spec, generator, labels, call))

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, sd: dict) -> None:
        if sd:
            raise UserError(f"{self.what} holds its weights; give it no checkpoint")


def session(path: Path, device: str, what: str) -> Any:
    """An onnxruntime session on the device's provider (CUDA where onnxruntime has it)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError(f"{what} needs onnxruntime: pip install 'genbench[onnx]'") from None
    providers: list = ["CPUExecutionProvider"]
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        index = str(device).partition(":")[2] or "0"
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(index)}))
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{what}: onnxruntime cannot load it ({reason})") from None
