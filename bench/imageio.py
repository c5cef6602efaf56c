"""Image sets on disk (an .npz or an image folder) as uint8 NCHW arrays, and their checks.
Reading imports no torch (a run refused for a samples file stops before torch loads)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from bench.cache import atomic_write_bytes
from bench.errors import UserError
from bench.npz import MAX_IMAGES, NpyHeader, read_header, read_rows

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
NPZ_KEYS = ("images", "arr_0")
GRAY_MODES = {"1", "L", "LA"}
# 4096 x 4096: 16 times FFHQ's 1024 x 1024; its header is read before any pixel is decoded
MAX_IMAGE_PIXELS = 4096 * 4096

if TYPE_CHECKING:
    import torch


def check_uint8_nchw(images: torch.Tensor | np.ndarray, what: str = "images") -> torch.Tensor:
    """`images` as a uint8 (N, C, H, W) tensor with C in {1, 3}, or a UserError saying why not."""
    import torch

    if isinstance(images, np.ndarray):
        return torch.from_numpy(uint8_nchw(images, what))
    if not isinstance(images, torch.Tensor):
        raise UserError(f"{what}: expected a uint8 tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8:
        nan = images.is_floating_point() and bool(images.isnan().any())
        raise UserError(_not_uint8(what, images.dtype, nan))
    _check_nchw(tuple(images.shape), what)
    return images


def uint8_nchw(images: np.ndarray, what: str = "images") -> np.ndarray:
    """check_uint8_nchw for an array, without torch: a contiguous uint8 (N, C, H, W) array."""
    if images.dtype != np.uint8:
        nan = images.dtype.kind == "f" and bool(np.isnan(images).any())
        raise UserError(_not_uint8(what, images.dtype, nan))
    _check_nchw(images.shape, what)
    return np.ascontiguousarray(images)


def _not_uint8(what: str, dtype: object, nan: bool) -> str:
    return (
        f"{what}: expected uint8 pixels 0..255, got {dtype}{' (contains NaN)' if nan else ''}; "
        "quantize first, e.g. (x * 255).round().clamp(0, 255).to(torch.uint8)"
    )


def _check_nchw(shape: tuple[int, ...], what: str) -> None:
    if len(shape) != 4 or shape[1] not in (1, 3) or min(shape[2:]) < 1:
        raise UserError(f"{what}: expected shape (N, C, H, W) with C 1 or 3, got {shape}")


def load_images(
    path: str | os.PathLike, n: int | None = None, shape: tuple[int, ...] | None = None
) -> torch.Tensor:
    """read_images as a tensor."""
    import torch

    return torch.from_numpy(read_images(path, n, shape))


def read_images(
    path: str | os.PathLike, n: int | None = None, shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """Images from an .npz (key 'images', else 'arr_0', else the first array; NCHW or NHWC)
    or from an image folder (searched recursively, sorted by name) as uint8 NCHW.

    n: exactly the first n images (a set with fewer is refused); without it, all of them.
    shape: the (C, H, W) the images must have. An .npz holds at most MAX_IMAGES; its count
    and shape are checked against its header before any pixel is decompressed."""
    p = Path(path).expanduser()
    if p.is_dir():
        images = _read_folder(p)
        if n is not None and len(images) < n:
            raise UserError(f"{p} holds {len(images)} images; {n} are needed")
        return images[:n]
    if not p.exists():
        raise UserError(f"{p} does not exist; give an .npz file or an image folder")
    if p.suffix.lower() != ".npz":
        raise UserError(f"{p}: expected an .npz file or an image folder")
    return _read_npz(p, n, shape)


def images_header(
    path: str | os.PathLike, n: int | None = None, shape: tuple[int, ...] | None = None
) -> NpyHeader:
    """The header of an .npz of images, refused unless it declares 4-d images (of `shape` as
    C,H,W or H,W,C when given), at least one, at least n when given, at most MAX_IMAGES."""
    header = read_header(Path(path).expanduser(), NPZ_KEYS)
    dims, what = header.shape, header.what
    if len(dims) != 4:
        raise UserError(f"{what}: expected shape (N, C, H, W) with C 1 or 3, got {dims}")
    if shape is not None and dims[1:] not in (tuple(shape), _hwc(shape)):
        raise UserError(f"{what} has shape {dims}, expected {(dims[0], *shape)}")
    if dims[0] == 0:
        raise UserError(f"{what} holds no images")
    if n is not None and dims[0] < n:
        raise UserError(f"{what} holds {dims[0]} images; {n} are needed")
    if dims[0] > MAX_IMAGES:
        raise UserError(f"{what} holds {dims[0]} images; an .npz may hold at most {MAX_IMAGES}")
    return header


def save_npz(path: str | os.PathLike, images: torch.Tensor | np.ndarray) -> None:
    """Write uint8 NCHW images to `path` under key 'images', atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=check_uint8_nchw(images).cpu().numpy())
    atomic_write_bytes(Path(path), buffer.getvalue())


def _read_npz(p: Path, n: int | None, shape: tuple[int, ...] | None) -> np.ndarray:
    header = images_header(p, n, shape)
    array = read_rows(header, header.shape[0] if n is None else n)
    what = header.what
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise UserError(f"{what} contains NaN; save uint8 images 0..255")
    if _is_hwc(header.shape[1:], shape):
        array = array.transpose(0, 3, 1, 2)
    return uint8_nchw(array, what)


def _hwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (*shape[1:], shape[0])


def _is_hwc(dims: tuple[int, ...], shape: tuple[int, ...] | None) -> bool:
    if shape is not None:
        return dims != tuple(shape)
    return dims[0] not in (1, 3) and dims[2] in (1, 3)


def image_files(folder: Path) -> list[Path]:
    """The image files of a folder and its subfolders, sorted; a FIFO, socket or device
    among them is refused (opening a FIFO waits for a writer forever)."""
    files = sorted(
        f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and not f.is_dir()
    )
    for f in files:
        if not f.is_file():
            raise UserError(f"{f} is not a regular file; remove it from the image folder")
    return files


def _read_folder(p: Path) -> np.ndarray:
    files = image_files(p)
    if not files:
        raise UserError(f"{p} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    arrays = []
    for f in files:
        try:
            with Image.open(f) as im:
                if im.width * im.height > MAX_IMAGE_PIXELS:  # before its pixels are decoded
                    raise UserError(
                        f"{f} is {im.width}x{im.height}; an image may have at most "
                        f"{MAX_IMAGE_PIXELS:,} pixels"
                    )
                a = np.asarray(im.convert("L" if im.mode in GRAY_MODES else "RGB"))
        except UserError:
            raise
        # a corrupt file raises what its decoder raises (ValueError for a bad BMP palette,
        # DecompressionBombError, EOFError, ...): any of them is one line about that file
        except Exception as e:
            raise UserError(f"{f} is not a readable image ({type(e).__name__}: {e})") from None
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    # As pytorch-fid (which reads every image as RGB): gray among colour images becomes colour.
    if len({a.shape[0] for a in arrays}) > 1:
        arrays = [a.repeat(3, axis=0) if a.shape[0] == 1 else a for a in arrays]
    for f, a in zip(files, arrays, strict=True):
        if a.shape != arrays[0].shape:
            raise UserError(
                f"{p}: images differ in size ({files[0].name} is {arrays[0].shape}, "
                f"{f.name} is {a.shape} as C,H,W); make them all one size"
            )
    return np.stack(arrays)
