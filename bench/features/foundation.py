"""Registrations of the foundation-model feature spaces, whose weights no package ships:
DINOv2 (FD-DINOv2, Stein et al. 2023) and CLIP ViT-L/14@336px (CMMD, Jayasumana et al.
2024). Each loads from the file the user gives (`--weights`, a suite's `weights:`) or from
the torch hub cache under $TORCH_HOME; the networks (timm) are imported only when used."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from bench.features import Extractor, register_extractor

DINOV2_DIMS = {"vits14": 384, "vitb14": 768, "vitl14": 1024, "vitg14": 1536}


def _extractor(ext) -> Extractor:
    provenance = {
        f"{ext.name}_weights_sha256": ext.weights_sha256,
        f"{ext.name}_weights": str(ext.weights_path),
    }
    return Extractor(ext.features, ext.weights_sha256, provenance)


@functools.lru_cache(maxsize=2)  # a suite's jobs share one loaded network
def _dinov2(arch: str, weights: str | None, device: str):
    from bench.features.dinov2 import load_dinov2

    return load_dinov2(arch, weights, device)


@functools.lru_cache(maxsize=1)
def _clip(weights: str | None, device: str):
    from bench.features.clip import load_clip

    return load_clip(weights, device)


def _dinov2_extractor(arch: str, device: torch.device, weights: Path | None) -> Extractor:
    return _extractor(_dinov2(arch, None if weights is None else str(weights), str(device)))


def _check_dinov2(arch: str, weights: Path | None) -> None:
    from bench.features.dinov2 import dinov2_weights

    dinov2_weights(arch, weights)


@register_extractor(
    "dinov2_vits14",
    takes_weights=True,
    dim=lambda data: DINOV2_DIMS["vits14"],
    check_weights=functools.partial(_check_dinov2, "vits14"),
)
def load_dinov2_vits14(data, device: torch.device, weights: Path | None) -> Extractor:
    return _dinov2_extractor("vits14", device, weights)


@register_extractor(
    "dinov2_vitb14",
    takes_weights=True,
    dim=lambda data: DINOV2_DIMS["vitb14"],
    check_weights=functools.partial(_check_dinov2, "vitb14"),
)
def load_dinov2_vitb14(data, device: torch.device, weights: Path | None) -> Extractor:
    return _dinov2_extractor("vitb14", device, weights)


@register_extractor(
    "dinov2_vitl14",
    takes_weights=True,
    dim=lambda data: DINOV2_DIMS["vitl14"],
    check_weights=functools.partial(_check_dinov2, "vitl14"),
)
def load_dinov2_vitl14(data, device: torch.device, weights: Path | None) -> Extractor:
    return _dinov2_extractor("vitl14", device, weights)


@register_extractor(
    "dinov2_vitg14",
    takes_weights=True,
    dim=lambda data: DINOV2_DIMS["vitg14"],
    check_weights=functools.partial(_check_dinov2, "vitg14"),
)
def load_dinov2_vitg14(data, device: torch.device, weights: Path | None) -> Extractor:
    return _dinov2_extractor("vitg14", device, weights)


def _check_clip(weights: Path | None) -> None:
    from bench.features.clip import clip_weights

    clip_weights(weights)


@register_extractor(
    "clip_vitl14_336", takes_weights=True, dim=lambda data: 768, check_weights=_check_clip
)
def load_clip_extractor(data, device: torch.device, weights: Path | None) -> Extractor:
    return _extractor(_clip(None if weights is None else str(weights), str(device)))
