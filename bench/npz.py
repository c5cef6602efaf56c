"""One array of an .npz file, read header first: its shape and dtype are known before any
data is, and only the rows asked for are decompressed. A small file can declare a huge
array (zeros compress about 1000:1), so callers check the header against what they need
before calling read_rows."""

from __future__ import annotations

import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from bench.errors import UserError

# Above this, an array is refused whatever its shape: 4 GiB is far more than any sample set
# the harness scores, and a file this size would not fit beside the features anyway.
MAX_READ_BYTES = 4 * 2**30
# Images in a sample set, four times the 50,000 of the usual FID protocol; also bounds what a
# small, highly compressed .npz can make us allocate (here, not in bench.imageio, so that a
# suite's n_samples is checked without importing torch).
MAX_IMAGES = 200_000

_CHUNK = 16 * 2**20
_ZIP_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True)
class NpyHeader:
    path: Path
    key: str  # the array's name as np.load reports it
    member: str  # its name inside the zip
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool

    @property
    def what(self) -> str:
        return f"{self.path}[{self.key!r}]"

    @property
    def row_bytes(self) -> int:
        return math.prod(self.shape[1:]) * self.dtype.itemsize


def read_header(path: str | Path, prefer: tuple[str, ...] = ()) -> NpyHeader:
    """The header of the first array named in `prefer` that the .npz holds, else of its first
    array; a file that is not an .npz of plain numeric arrays is a UserError."""
    header, stored = _locate(Path(path), prefer)
    dtype = header.dtype
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf":
        raise UserError(f"{header.what} holds {dtype} values; expected a numeric array")
    if not header.shape:
        raise UserError(f"{header.what} is a single value, not an array of samples")
    _check_stored(header, stored)
    return header


def read_any_header(path: str | Path, key: str) -> NpyHeader:
    """The header of array `key`, whatever its dtype and shape (a string scalar, say), checked
    against the bytes the file holds for it."""
    header, stored = _locate(Path(path), (key,))
    if header.key != key:
        raise UserError(f"{path} holds no array {key!r}")
    _check_stored(header, stored)
    return header


def _locate(path: Path, prefer: tuple[str, ...]) -> tuple[NpyHeader, int]:
    """The header of the array `read_header` describes, and how many data bytes follow it."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = {_key(name): name for name in zf.namelist()}
            key = next((k for k in prefer if k in members), next(iter(members), None))
            if key is None:
                raise UserError(f"{path} holds no arrays")
            info = zf.getinfo(members[key])
            with zf.open(info) as fp:
                shape, fortran_order, dtype = _npy_header(fp)
                data_offset = fp.tell()
    except UserError:
        raise
    except _ZIP_ERRORS as e:
        msg = f"{path} is not a readable .npz ({_reason(e)}); save it with numpy.savez"
        raise UserError(msg) from None
    header = NpyHeader(path, key, members[key], tuple(shape), dtype, fortran_order)
    return header, info.file_size - data_offset


def _check_stored(header: NpyHeader, stored: int) -> None:
    declared = math.prod(header.shape) * header.dtype.itemsize
    if stored < declared:
        raise UserError(
            f"{header.what} is truncated: its shape {header.shape} needs {declared} bytes, "
            f"it holds {max(stored, 0)}"
        )


def is_stats_file(path: str | Path) -> bool:
    """Whether `path` is an .npz holding `mu` and `sigma` (FD statistics, not images)."""
    p = Path(path).expanduser()
    if not p.is_file() or p.suffix.lower() != ".npz":
        return False
    try:
        with np.load(p, allow_pickle=False) as npz:
            return {"mu", "sigma"} <= set(npz.files)
    except (OSError, ValueError, zipfile.BadZipFile):
        return False


def has_array(path: str | Path, key: str) -> bool:
    """Whether the .npz holds an array named `key`."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            return key in {_key(name) for name in zf.namelist()}
    except _ZIP_ERRORS as e:
        msg = f"{path} is not a readable .npz ({_reason(e)}); save it with numpy.savez"
        raise UserError(msg) from None


def read_rows(header: NpyHeader, n: int) -> np.ndarray:
    """The first n rows of the array, decompressing only those (all of it when the file is in
    Fortran order, where rows are not contiguous)."""
    if not 0 <= n <= header.shape[0]:
        raise UserError(f"{header.what} holds {header.shape[0]} rows, not {n}")
    whole = header.fortran_order
    nbytes = (header.shape[0] if whole else n) * header.row_bytes
    if nbytes > MAX_READ_BYTES:
        raise UserError(
            f"{header.what} declares {nbytes / 2**30:.1f} GiB of data; "
            f"at most {MAX_READ_BYTES // 2**30} GiB are read"
        )
    try:
        with zipfile.ZipFile(header.path) as zf, zf.open(header.member) as fp:
            _npy_header(fp)
            data = _read_exactly(fp, nbytes)
            if data is not None and nbytes == header.shape[0] * header.row_bytes:
                fp.read(1)  # reaches the end of the member, where zipfile checks its CRC
    except _ZIP_ERRORS as e:
        raise UserError(f"{header.what} cannot be read ({_reason(e)})") from None
    if data is None:
        raise UserError(f"{header.what} is truncated (fewer than the {nbytes} bytes declared)")
    if whole:
        array = np.frombuffer(data, header.dtype).reshape(header.shape[::-1]).T[:n]
    else:
        array = np.frombuffer(data, header.dtype).reshape(n, *header.shape[1:])
    return np.ascontiguousarray(array, dtype=header.dtype.newbyteorder("="))


def _read_exactly(fp, nbytes: int) -> bytearray | None:
    # chunked into one writable buffer: fp.read(nbytes) would hold the data twice
    buffer = bytearray(nbytes)
    view = memoryview(buffer)
    done = 0
    while done < nbytes:
        got = fp.readinto(view[done : done + _CHUNK])
        if not got:
            return None
        done += got
    return buffer


def _npy_header(fp) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = npy_format.read_magic(fp)
    if version == (1, 0):
        return npy_format.read_array_header_1_0(fp)
    if version == (2, 0):
        return npy_format.read_array_header_2_0(fp)
    raise ValueError(f"unsupported .npy format version {version}")


def _key(member: str) -> str:
    return member[:-4] if member.endswith(".npy") else member


def _reason(e: Exception) -> str:
    return str(e) or type(e).__name__
