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


# The pickle of CLIP ViT-L/14@336px's archive is about 100 KB and its largest storage well
# under 1 GiB: what declares more is refused before it is inflated.
MAX_PICKLE_BYTES = 64 * 2**20
MAX_STORAGE_BYTES = 2 * 2**30


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
        size = zf.getinfo(data_pkl[0]).file_size  # as declared: reading stops there
        if size > MAX_PICKLE_BYTES:
            raise pickle.UnpicklingError(f"{data_pkl[0]} inflates to {size} bytes")
        root = _Unpickler(io.BytesIO(zf.read(data_pkl[0])), zf, prefix).load()
    if not isinstance(root, _ScriptObject):
        raise pickle.UnpicklingError("the archive does not hold a module")
    return dict(_tensors(root, ""))


class _ScriptObject:
    """Stands in for an archive's module class: holds its attributes, has no behaviour."""

    attrs: dict

    def __new__(cls, *args: object, **kwargs: object) -> _ScriptObject:
        if args or kwargs:  # a module's state comes through __setstate__, never arguments
            raise pickle.UnpicklingError("a module class is called with arguments")
        return super().__new__(cls)

    def __setstate__(self, state: object) -> None:
        self.attrs = state if isinstance(state, dict) else {}


def _rebuild_tensor(storage: torch.Tensor, offset: int, size, stride, *_: object) -> torch.Tensor:
    """The tensor of `size` and `stride` at `offset` of `storage`, which must hold all of it
    (as_strided would read past the storage's end)."""
    try:
        size, stride, offset = tuple(map(int, size)), tuple(map(int, stride)), int(offset)
    except (TypeError, ValueError):
        raise pickle.UnpicklingError("a tensor's size, stride or offset is not integers") from None
    if len(size) != len(stride) or min((*size, *stride, offset), default=0) < 0:
        raise pickle.UnpicklingError(f"a tensor of size {size} and stride {stride}")
    last = offset + sum((n - 1) * st for n, st in zip(size, stride, strict=True))
    if 0 not in size and last >= storage.numel():
        raise pickle.UnpicklingError(
            f"a tensor of size {size} reaches element {last} of a storage of {storage.numel()}"
        )
    return storage.as_strided(size, stride, offset)


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
        name = f"{self.prefix}data/{key}"
        if not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError(f"storage {key} declares {numel!r} values")
        expected = numel * torch.empty((), dtype=dtype).element_size()
        if expected > MAX_STORAGE_BYTES:
            raise pickle.UnpicklingError(f"storage {key} declares {expected} bytes")
        if self.zf.getinfo(name).file_size != expected:  # before anything is inflated
            raise pickle.UnpicklingError(
                f"storage {key} holds {self.zf.getinfo(name).file_size} bytes, not the "
                f"{expected} of {numel} values"
            )
        data = bytearray(self.zf.read(name))
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
