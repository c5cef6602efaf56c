"""FID (or pixel-space FD) between two image sets on disk."""

from __future__ import annotations

import os

import torch

from bench.device import resolve_device
from bench.errors import UserError
from bench.features.inception import MODES, inception_features, load_inception
from bench.features.pixels import pixel_features
from bench.imageio import load_images
from bench.metrics.fd import frechet_distance

FEATURES = ("inception", "pixels")


def fid_between(
    path_a: str | os.PathLike,
    path_b: str | os.PathLike,
    *,
    features: str = "inception",
    mode: str = "clean",
    batch_size: int = 50,
    device: str | torch.device | None = None,
) -> dict:
    """Fréchet distance between two image sets (.npz files or image folders).

    Returns fid, n_a, n_b, features, mode (None for pixels), weights_sha256 (None for
    pixels) and device. FD grows as n shrinks: compare results at equal n only.
    """
    if features not in FEATURES:
        raise UserError(f"unknown features {features!r}; use one of {FEATURES}")
    if features == "inception" and mode not in MODES:
        raise UserError(f"unknown Inception mode {mode!r}; use one of {MODES}")
    a, b = load_images(path_a), load_images(path_b)
    if min(len(a), len(b)) < 2:
        raise UserError(f"FID needs at least 2 images per set, got {len(a)} and {len(b)}")
    if features == "pixels":
        if a.shape[1:] != b.shape[1:]:
            raise UserError(
                f"pixel features need equal image shapes, got {tuple(a.shape[1:])} "
                f"and {tuple(b.shape[1:])} (C, H, W)"
            )
        fa, fb = pixel_features(a), pixel_features(b)
        mode, sha, dev = None, None, None
    else:
        dev = resolve_device("auto" if device is None else str(device))
        sha = load_inception(dev)[1]
        fa = inception_features(a, mode=mode, batch_size=batch_size, device=dev)
        fb = inception_features(b, mode=mode, batch_size=batch_size, device=dev)
    return {
        "fid": frechet_distance(fa, fb),
        "n_a": len(a),
        "n_b": len(b),
        "features": features,
        "mode": mode,
        "weights_sha256": sha,
        "device": None if dev is None else str(dev),
    }
