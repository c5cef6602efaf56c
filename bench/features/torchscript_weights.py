"""The tensors of a TorchScript archive (OpenAI publishes CLIP as one) read without torch.jit.

torch.jit.load compiles and keeps the code stored in the archive, and torch.load refuses such
archives with weights_only=True. This reads only the archive's data.pkl with an unpickler that
knows tensors, storages and an attribute holder for the archive's module classes; any other
object in the pickle is refused, so nothing stored in the file runs."""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path

import torch

_STORAGE_DTYPES = {
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
# Typed containers in TorchScript pickles are rebuilt by these; their first argument is the value.
_PASS_THROUGH = {
    "build_intlist",
    "build_floatlist",
    "build_doublelist",
    "build_boollist",
    "build_tensorlist",
    "restore_type_tag",
}


def is_torchscript_archive(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in zf.namelist())


def read_torchscript_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor attribute of the archive's module tree by dotted name (as its state_dict
    names parameters and buffers). Raises pickle.UnpicklingError for anything else inside."""
    with zipfile.ZipFile(path) as zf:
        data_pkl = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(data_pkl) != 1:
            raise pickle.UnpicklingError("no single <archive>/data.pkl")
        prefix = data_pkl[0].removesuffix("data.pkl")
        byteorder = (
            zf.read(prefix + "byteorder").decode()
            if prefix + "byteorder" in zf.namelist()
            else "little"
        )
        if byteorder.strip() != "little":
            raise pickle.UnpicklingError(f"byte order {byteorder!r} is not supported")
        root = _Unpickler(io.BytesIO(zf.read(data_pkl[0])), zf, prefix).load()
    if not isinstance(root, _ScriptObject):
        raise pickle.UnpicklingError("the archive does not hold a module")
    return dict(_tensors(root, ""))


class _ScriptObject:
    """Stands in for an archive's module class: holds its attributes, has no behaviour."""

    attrs: dict

    def __setstate__(self, state: object) -> None:
        self.attrs = state if isinstance(state, dict) else {}


def _rebuild_tensor(storage: torch.Tensor, offset: int, size, stride, *_: object) -> torch.Tensor:
    return storage.as_strided(tuple(size), tuple(stride), offset)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, zf: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self.zf, self.prefix = zf, prefix

    def find_class(self, module: str, name: str) -> object:
        if module == "__torch__" or module.startswith("__torch__."):
            return _ScriptObject
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module == "torch.jit._pickle" and name in _PASS_THROUGH:
            return _first_argument
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def persistent_load(self, pid: object) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, dtype, key, _location, numel = pid
        if not isinstance(dtype, torch.dtype):
            raise pickle.UnpicklingError(f"unexpected storage type {dtype!r}")
        data = bytearray(self.zf.read(f"{self.prefix}data/{key}"))
        flat = torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
        if flat.numel() != numel:
            raise pickle.UnpicklingError(f"storage {key} holds {flat.numel()} of {numel} values")
        return flat


def _first_argument(value: object, *_: object) -> object:
    return value


def _tensors(obj: _ScriptObject, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    for name, value in obj.attrs.items():
        if isinstance(value, torch.Tensor):
            yield prefix + name, value
        elif isinstance(value, _ScriptObject):
            yield from _tensors(value, f"{prefix}{name}.")
