"""CLIP ViT-L/14@336px image embeddings for CMMD, as google-research/cmmd computes them.

Protocol, from cmmd io_util.py (commit 1963839) and embedding.py (commit 8d8a4f1):
- each image as an RGB PIL image, its central square cropped and resized to 336 x 336 with
  PIL bicubic (which antialiases), on the 8-bit image (io_util._center_crop_and_resize);
  grayscale is repeated to three channels;
- x / 255, then (x - mean) / std with CLIP's mean and std (scenic clip.normalize_image; the
  bicubic jax.image.resize before it is the identity at 336);
- the image tower's projected embedding, L2-normalized (scenic CLIP, normalize=True).
torch-fidelity's CLIP extractor resizes with TensorFlow-1-style bilinear on float pixels, without
a crop, and does not normalize the embedding; the two agree (after normalizing) only on
336 x 336 inputs.

The network is timm's VisionTransformer in CLIP's configuration (pre-norm, QuickGELU, no patch
bias, the projection as a bias-free head). The weights are OpenAI's ViT-L-14-336px.pt, a
TorchScript archive whose tensors are read without torch.jit (bench.features.torchscript_weights),
or a state dict in the same names saved with torch.save.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from bench.cache import sha256_file
from bench.device import resolve_device
from bench.errors import UserError
from bench.features.local_weights import batched_features, check_state_dict, read_state_dict
from bench.features.pil_resize import pil_bicubic
from bench.features.torchscript_weights import is_torchscript_archive, read_torchscript_tensors
from bench.features.weights_files import clip_file, find_weights
from bench.imageio import check_uint8_nchw

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClipVitConfig:
    """An OpenAI CLIP image tower: heads = width / 64, MLP 4 x width, as OpenAI builds it."""

    width: int
    layers: int
    patch: int
    resolution: int
    embed_dim: int

    def describe(self) -> str:
        return (
            f"width {self.width}, {self.layers} layers, patch {self.patch}, "
            f"{self.resolution}px, embedding {self.embed_dim}"
        )


VITL14_336 = ClipVitConfig(width=1024, layers=24, patch=14, resolution=336, embed_dim=768)


@dataclass(frozen=True, eq=False)
class ClipExtractor:
    """A loaded CLIP image tower; `features` maps uint8 NCHW images to unit-norm (n, dim)."""

    name: str
    dim: int
    resolution: int
    weights_path: Path
    weights_sha256: str
    model: nn.Module

    def features(self, images: torch.Tensor | np.ndarray, *, batch_size: int = 32) -> np.ndarray:
        def embed(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
            emb = self.model(preprocess(batch, self.resolution).to(device)).float()
            return emb / torch.linalg.norm(emb, dim=-1, keepdim=True)

        return batched_features(check_uint8_nchw(images), batch_size, self.dim, self.model, embed)


def load_clip(
    weights: str | Path | None = None,
    device: str | torch.device | None = None,
    *,
    config: ClipVitConfig = VITL14_336,
) -> ClipExtractor:
    """The CLIP image tower of `config` (default ViT-L/14@336px) from `weights`, else from the
    first file of weights_files.clip_file() that exists; on `device` (None: CUDA when
    available)."""
    dev = resolve_device("auto" if device is None else str(device))
    path, visual = clip_weights(weights, config)
    model = _skeleton(config)
    model.load_state_dict(to_timm(visual), strict=True, assign=True)
    name = "clip_vitl14_336" if config == VITL14_336 else "clip_custom"
    sha = sha256_file(path)
    return ClipExtractor(name, config.embed_dim, config.resolution, path, sha, model.to(dev))


def clip_weights(
    weights: str | Path | None = None, config: ClipVitConfig = VITL14_336
) -> tuple[Path, dict[str, torch.Tensor]]:
    """The weights file (`weights`, else the first of clip_file()'s places that exists) and
    its image-tower tensors by OpenAI's names; a UserError when it is missing or its names and
    shapes are not `config`'s tower. Nothing is built."""
    default = clip_file()
    what = default.what if config == VITL14_336 else f"CLIP ({config.describe()})"
    path = find_weights(weights, default.candidates, what, default.url)
    state = read_openai_weights(path, what)
    visual = {k: v for k, v in state.items() if k.startswith("visual.")}
    found = infer_config(visual)
    if found is not None and found != config:
        raise UserError(
            f"{path} holds a CLIP image tower with {found.describe()}; {what} needs "
            f"{config.describe()}"
        )
    check_state_dict(visual, openai_template(config), path, what)
    return path, visual


def read_openai_weights(path: Path, what: str) -> dict[str, torch.Tensor]:
    """The tensors by OpenAI's names of a TorchScript archive or a torch.save'd state dict."""
    try:
        torchscript = is_torchscript_archive(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise UserError(f"cannot read {path} as {what} weights: {e}") from None
    if not torchscript:
        return read_state_dict(path, what)
    try:
        return read_torchscript_tensors(path)
    except (pickle.UnpicklingError, zipfile.BadZipFile, KeyError, ValueError, EOFError) as e:
        raise UserError(f"cannot read {path} as {what} weights: {e}") from None


def preprocess(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """cmmd's preprocessing of uint8 NCHW images: float32 (n, 3, resolution, resolution)."""
    x = pil_bicubic(images, resolution, center_crop=True)
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)


def build_model(config: ClipVitConfig) -> nn.Module:
    """timm's ViT in OpenAI CLIP's image-tower layout, random weights, eval mode."""
    model = VisionTransformer(
        img_size=config.resolution,
        patch_size=config.patch,
        embed_dim=config.width,
        depth=config.layers,
        num_heads=config.width // 64,
        pre_norm=True,  # CLIP's ln_pre; timm then drops the patch-embedding bias, as CLIP has
        norm_layer=partial(nn.LayerNorm, eps=1e-5),
        act_layer="quick_gelu",
        global_pool="token",
        num_classes=config.embed_dim,
    )
    return model.eval().requires_grad_(False)


def _skeleton(config: ClipVitConfig) -> nn.Module:
    with torch.device("meta"):
        return build_model(config)


def infer_config(visual: dict[str, torch.Tensor]) -> ClipVitConfig | None:
    """The image tower a state dict holds, read off its shapes as OpenAI's build_model does;
    None when the names it needs are absent."""
    try:
        width, _, patch, _ = visual["visual.conv1.weight"].shape
        grid = round((visual["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        embed_dim = visual["visual.proj"].shape[1]
    except (KeyError, ValueError, IndexError):
        return None
    layers = sum(k.endswith(".attn.in_proj_weight") for k in visual)
    return ClipVitConfig(int(width), layers, int(patch), int(patch * grid), int(embed_dim))


def openai_template(c: ClipVitConfig) -> dict[str, torch.Tensor]:
    """Names and shapes of the image tower in OpenAI's checkpoint (meta tensors)."""
    w, grid = c.width, c.resolution // c.patch
    shapes = {
        "visual.conv1.weight": (w, 3, c.patch, c.patch),
        "visual.class_embedding": (w,),
        "visual.positional_embedding": (grid * grid + 1, w),
        "visual.ln_pre.weight": (w,),
        "visual.ln_pre.bias": (w,),
        "visual.ln_post.weight": (w,),
        "visual.ln_post.bias": (w,),
        "visual.proj": (w, c.embed_dim),
    }
    for i in range(c.layers):
        p = f"visual.transformer.resblocks.{i}."
        shapes |= {
            p + "ln_1.weight": (w,),
            p + "ln_1.bias": (w,),
            p + "attn.in_proj_weight": (3 * w, w),
            p + "attn.in_proj_bias": (3 * w,),
            p + "attn.out_proj.weight": (w, w),
            p + "attn.out_proj.bias": (w,),
            p + "ln_2.weight": (w,),
            p + "ln_2.bias": (w,),
            p + "mlp.c_fc.weight": (4 * w, w),
            p + "mlp.c_fc.bias": (4 * w,),
            p + "mlp.c_proj.weight": (w, 4 * w),
            p + "mlp.c_proj.bias": (w,),
        }
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


_BLOCK_NAMES = (
    ("ln_1.", "norm1."),
    ("attn.in_proj_weight", "attn.qkv.weight"),
    ("attn.in_proj_bias", "attn.qkv.bias"),
    ("attn.out_proj.", "attn.proj."),
    ("ln_2.", "norm2."),
    ("mlp.c_fc.", "mlp.fc1."),
    ("mlp.c_proj.", "mlp.fc2."),
)


def to_timm(visual: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI's image-tower tensors in timm's names, as float32."""
    out = {}
    for k, v in visual.items():
        v = v.float()
        name = k.removeprefix("visual.")
        if name == "conv1.weight":
            out["patch_embed.proj.weight"] = v
        elif name == "class_embedding":
            out["cls_token"] = v.reshape(1, 1, -1)
        elif name == "positional_embedding":
            out["pos_embed"] = v.unsqueeze(0)
        elif name.startswith(("ln_pre.", "ln_post.")):
            out[name.replace("ln_pre.", "norm_pre.").replace("ln_post.", "norm.")] = v
        elif name == "proj":
            out["head.weight"] = v.t().contiguous()
            out["head.bias"] = torch.zeros(v.shape[1])
        else:
            name = name.replace("transformer.resblocks.", "blocks.")
            for old, new in _BLOCK_NAMES:
                name = name.replace(old, new)
            out[name] = v
    return out
