"""DINOv2 ViT/14 features (Stein et al. 2023, FD-DINOv2), as layer6ai-labs/dgm-eval computes them.

Protocol, from dgm-eval dgm_eval/models/dinov2.py and dgm_eval/resizer.py at commit
d57a6d2d6bd613332dd21696994afff8efa78575 (default, clean_resize=False):
- each image as an RGB PIL image (dataloaders.py: convert("RGB")), resized to 224 x 224
  with torchvision Resize((224, 224), BICUBIC), i.e. PIL bicubic on the 8-bit image
  (aspect ratio not kept, no crop);
- ToTensor (x / 255), then Normalize with the ImageNet mean and std;
- the feature is the network's output, the hub model's forward: the class token after the
  final LayerNorm (x_norm_clstoken; the head is the identity).
torch-fidelity's FeatureExtractorDinoV2 resizes differently (TensorFlow-1-style bilinear on
float pixels); the two agree only on 224 x 224 inputs.

The network is timm's DINOv2 ViT (vit_*_patch14_dinov2) and the weights are Meta's official
checkpoint file, dinov2_{arch}_pretrain.pth, the file torch.hub caches under
$TORCH_HOME/hub/checkpoints when it loads facebookresearch/dinov2 (or any path given). Its
position embedding is for 518 x 518 (37 x 37 patches); the hub model resamples it for every
224 x 224 batch with bicubic interpolation at scale (16 + 0.1) / 37 (its interpolate_offset),
which differs from timm's resampling to a size, so it is resampled once here, the hub's way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F
from torch import nn

from bench.cache import sha256_file
from bench.device import resolve_device
from bench.errors import UserError
from bench.features.local_weights import batched_features, check_state_dict, read_state_dict
from bench.features.pil_resize import pil_bicubic
from bench.features.weights_files import dinov2_file, find_weights
from bench.imageio import check_uint8_nchw

ARCHS = {  # arch -> (timm model, feature dimension)
    "vits14": ("vit_small_patch14_dinov2", 384),
    "vitb14": ("vit_base_patch14_dinov2", 768),
    "vitl14": ("vit_large_patch14_dinov2", 1024),
    "vitg14": ("vit_giant_patch14_dinov2", 1536),
}
DEFAULT_ARCH = "vitl14"
INPUT_SIZE = 224
PATCH = 14
INTERPOLATE_OFFSET = 0.1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_weights_path(arch: str) -> Path:
    return dinov2_file(_check_arch(arch)).candidates[0]


@dataclass(frozen=True, eq=False)
class DinoV2Extractor:
    """A loaded DINOv2 network; `features` maps uint8 NCHW images to float32 (n, dim)."""

    name: str
    dim: int
    weights_path: Path
    weights_sha256: str
    model: nn.Module

    def features(self, images: torch.Tensor | np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        def embed(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
            return self.model(preprocess(batch).to(device))

        return batched_features(check_uint8_nchw(images), batch_size, self.dim, self.model, embed)


def load_dinov2(
    arch: str = DEFAULT_ARCH,
    weights: str | Path | None = None,
    device: str | torch.device | None = None,
) -> DinoV2Extractor:
    """DINOv2 `arch` (vits14, vitb14, vitl14, vitg14) from `weights`, else from the torch hub
    cache; on `device` (None: CUDA when available). Missing or mismatched weights: UserError."""
    arch = _check_arch(arch)
    dev = resolve_device("auto" if device is None else str(device))
    path, official = dinov2_weights(arch, weights)
    model = _skeleton(arch)
    model.load_state_dict(to_timm(official), strict=True, assign=True)
    model = model.to(dev)
    return DinoV2Extractor(f"dinov2_{arch}", ARCHS[arch][1], path, sha256_file(path), model)


def dinov2_weights(
    arch: str, weights: str | Path | None = None
) -> tuple[Path, dict[str, torch.Tensor]]:
    """The weights file of DINOv2 `arch` (`weights`, else the torch hub cache's) and its
    tensors by the official names, memory-mapped; a UserError when it is missing or its names
    and shapes are not this network's. Nothing is built but a skeleton on the meta device."""
    arch = _check_arch(arch)
    file = dinov2_file(arch)
    path = find_weights(weights, file.candidates, file.what, file.url)
    official = read_state_dict(path, file.what)
    check_state_dict(official, official_template(_skeleton(arch)), path, file.what)
    return path, official


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """dgm-eval's transform of uint8 NCHW images: float32 (n, 3, 224, 224)."""
    x = pil_bicubic(images, INPUT_SIZE, center_crop=False)
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)


def build_model(arch: str) -> nn.Module:
    """timm's DINOv2 `arch` for 224 x 224 input, no head, random weights, eval mode."""
    timm_name = ARCHS[_check_arch(arch)][0]
    model = timm.create_model(timm_name, pretrained=False, img_size=INPUT_SIZE, num_classes=0)
    return model.eval().requires_grad_(False)


def _skeleton(arch: str) -> nn.Module:
    """build_model on the meta device: no memory and no random initialization, for weights
    that are assigned afterwards."""
    with torch.device("meta"):
        return build_model(arch)


def official_template(model: nn.Module) -> dict[str, torch.Tensor]:
    """Names and shapes of the official checkpoint for `model`'s architecture (meta tensors)."""
    timm_state = model.state_dict()
    dim = timm_state["cls_token"].shape[-1]
    grid = 518 // PATCH
    out = {}
    for k, v in timm_state.items():
        if ".mlp.fc1." in k and _swiglu(timm_state):
            k = k.replace(".mlp.fc1.", ".mlp.w12.")
        elif ".mlp.fc2." in k and _swiglu(timm_state):
            k = k.replace(".mlp.fc2.", ".mlp.w3.")
        out[k] = torch.empty(v.shape, device="meta")
    out["pos_embed"] = torch.empty(1, grid * grid + 1, dim, device="meta")
    out["mask_token"] = torch.empty(1, dim, device="meta")
    return out


def to_timm(official: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The official state dict in timm's names and float32, its position embedding resampled
    for 224."""
    out = {}
    for k, v in official.items():
        if k == "mask_token":  # used only in DINOv2 training
            continue
        out[k.replace(".mlp.w12.", ".mlp.fc1.").replace(".mlp.w3.", ".mlp.fc2.")] = v.float()
    out["pos_embed"] = resample_pos_embed(official["pos_embed"].float(), INPUT_SIZE // PATCH)
    return out


def resample_pos_embed(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """facebookresearch/dinov2 DinoVisionTransformer.interpolate_pos_encoding for a square
    input of grid x grid patches (interpolate_offset 0.1, no antialiasing)."""
    cls_pos, patch_pos = pos_embed[:, :1].float(), pos_embed[:, 1:].float()
    m = math.isqrt(patch_pos.shape[1])
    dim = patch_pos.shape[-1]
    scale = (grid + INTERPOLATE_OFFSET) / m
    patch_pos = F.interpolate(
        patch_pos.reshape(1, m, m, dim).permute(0, 3, 1, 2),
        scale_factor=(scale, scale),
        mode="bicubic",
        antialias=False,
    )
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)
    return torch.cat([cls_pos, patch_pos], dim=1).to(pos_embed.dtype)


def _swiglu(timm_state: dict[str, torch.Tensor]) -> bool:
    """ViT-g/14's feed-forward layers are SwiGLU (w12, w3 in the official file)."""
    w = timm_state["blocks.0.mlp.fc1.weight"]
    return w.shape[0] == 2 * timm_state["blocks.0.mlp.fc2.weight"].shape[1]


def _check_arch(arch: str) -> str:
    if arch not in ARCHS:
        raise UserError(f"unknown DINOv2 architecture {arch!r}; use one of {', '.join(ARCHS)}")
    return arch
