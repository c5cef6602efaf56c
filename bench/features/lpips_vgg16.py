"""LPIPS v0.1 with the VGG16 backbone (Zhang et al. 2018, "The Unreasonable Effectiveness of
Deep Features as a Perceptual Metric"), computed as the lpips package (richzhang/
PerceptualSimilarity, lpips 0.1.4: lpips/lpips.py LPIPS.forward with net='vgg',
version='0.1', lpips=True, spatial=False):
- ScalingLayer: (x - shift) / scale on images in [-1, 1], shift (-0.030, -0.088, -0.188),
  scale (0.458, 0.448, 0.450);
- VGG16's `features` in 5 slices (layers 0-3, 4-8, 9-15, 16-22, 23-29), whose outputs are
  relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 (lpips/pretrained_networks.py vgg16);
- each output unit-normalized over channels (x / (||x|| + 1e-10)), the squared difference
  of the two images' weighted by the calibrated 1x1 "lin" layer, averaged over positions,
  and the 5 layers summed.

The backbone is torchvision's ImageNet VGG16 (vgg16-397923af.pth), which no package here
ships: it comes from a local file in torchvision's layout (`torchvision.models.vgg16()
.state_dict()`), found like DINOv2's (bench.features.weights_files: a suite's `weights:
{lpips_vgg16: PATH}`, eval's --weights, else the torch hub cache). It is read with
torch.load(weights_only=True), which unpickles tensors and containers only and runs no code
stored in the file, and its names and shapes are checked before anything trains. The lin
layers are the lpips wheel's own file (lpips/weights/v0.1/vgg.pth), read the same way.

Small images: genbench's datasets are 8x8 to 32x32, too small for VGG16's four max-pools
(an 8x8 image has no pixel left at relu5_3). Images smaller than 64 pixels on a side are
resized to 64x64 with bilinear interpolation (align_corners=False, as lpips' own upsample)
before the ScalingLayer: 64x64 is the patch size LPIPS was calibrated on (the BAPPS
patches), where relu5_3 is 4x4. Larger images are fed as they are. Grayscale images are
repeated to 3 channels, and uint8 images map to [-1, 1] as x / 127.5 - 1.

Registered as the network `lpips_vgg16`, not a feature space: its embedding (every layer's
normalized activations scaled by sqrt(lin / positions), flattened; the squared Euclidean
distance between two embeddings is their LPIPS, the lin weights being non-negative) has
about 500,000 dimensions at 64x64, too many for FD, KID or PRDC. The metrics that use it
(`ppl_lpips_vgg16`, `lpips`) name it in `also`, so that its file is checked up front.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.cache import sha256_file
from bench.errors import UserError
from bench.features import Extractor, register_extractor
from bench.features.local_weights import check_state_dict, read_state_dict
from bench.features.weights_files import LPIPS_EXTRACTOR, find_weights, vgg16_file

MIN_SIZE = 64  # the BAPPS patch size LPIPS was calibrated on
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))  # relu1_2 ... relu5_3
CHANNELS = (64, 128, 256, 512, 512)
EPS = 1e-10  # lpips.normalize_tensor's


def vgg16_template() -> dict[str, torch.Tensor]:
    """The names and shapes of torchvision's VGG16 state dict (meta tensors)."""
    import torchvision

    with torch.device("meta"):
        return dict(torchvision.models.vgg16().state_dict())


def vgg16_weights(weights: str | Path | None = None) -> tuple[Path, dict[str, torch.Tensor]]:
    """The VGG16 weights file (`weights`, else the torch hub cache's) and its tensors,
    memory-mapped; a UserError when it is missing or is not torchvision's VGG16 layout."""
    file = vgg16_file()
    how = f"pass its path: weights: {{{LPIPS_EXTRACTOR}: PATH}} in a suite, --weights to eval"
    path = find_weights(weights, file.candidates, file.what, file.url, how)
    state = read_state_dict(path, file.what)
    check_state_dict(state, vgg16_template(), path, file.what)
    return path, state


def lin_weights_path() -> Path:
    """The lpips wheel's calibrated lin layers for VGG16 (v0.1), found without importing it."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or spec.origin is None:
        raise UserError("LPIPS needs the lpips package (pip install lpips) for its lin layers")
    return Path(spec.origin).parent / "weights" / "v0.1" / "vgg.pth"


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """NCHW images (uint8, or float in [-1, 1]) as LPIPS' input: float in [-1, 1], 3
    channels, at least 64x64 (bilinear)."""
    x = images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    h, w = x.shape[-2:]
    if h < MIN_SIZE or w < MIN_SIZE:
        size = (max(h, MIN_SIZE), max(w, MIN_SIZE))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x


class LpipsVgg16(nn.Module):
    """LPIPS v0.1 (VGG16): forward(x0, x1) -> (n,) distances of preprocessed image batches,
    in the module's dtype."""

    def __init__(self, vgg_features: dict[str, torch.Tensor], lins: dict[str, torch.Tensor]):
        super().__init__()
        import torchvision

        with torch.device("meta"):
            layers = torchvision.models.vgg16().features[:30]
        layers.load_state_dict(vgg_features, strict=True, assign=True)
        self.slices = nn.ModuleList(layers[a:b] for a, b in SLICES)
        self.lins = nn.ParameterList(lins[f"lin{k}.model.1.weight"] for k in range(len(SLICES)))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    def layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The unit-normalized relu1_2 ... relu5_3 activations of preprocessed images."""
        h = (x.to(self.shift.dtype) - self.shift) / self.scale
        out = []
        for block in self.slices:
            h = block(h)
            out.append(h / (h.square().sum(dim=1, keepdim=True).sqrt() + EPS))
        return out

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        total = 0
        for f0, f1, lin in zip(self.layers(x0), self.layers(x1), self.lins, strict=True):
            total = total + F.conv2d((f0 - f1).square(), lin).mean(dim=(2, 3))
        return total[:, 0]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(n, d) vectors whose squared Euclidean distances are the LPIPS distances."""
        parts = []
        for f, lin in zip(self.layers(x), self.lins, strict=True):
            weight = (lin.view(1, -1, 1, 1) / (f.shape[2] * f.shape[3])).sqrt()
            parts.append((f * weight).flatten(1))
        return torch.cat(parts, dim=1)


@dataclass(frozen=True, eq=False)
class LoadedLpips:
    network: LpipsVgg16
    weights_path: Path
    weights_sha256: str

    def distance(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """(n,) LPIPS of two batches of NCHW images (uint8, or float in [-1, 1])."""
        device = self.network.shift.device
        return self.network(preprocess(x0).to(device), preprocess(x1).to(device))

    def provenance(self) -> dict[str, str]:
        return {
            f"{LPIPS_EXTRACTOR}_weights_sha256": self.weights_sha256,
            f"{LPIPS_EXTRACTOR}_weights": str(self.weights_path),
        }


def build_lpips(vgg16_state: dict[str, torch.Tensor]) -> LpipsVgg16:
    """The LPIPS network from a VGG16 state dict in torchvision's layout (float32, CPU)."""
    features = {
        k.removeprefix("features."): v.float()
        for k, v in vgg16_state.items()
        if k.startswith("features.")
    }
    lins = torch.load(lin_weights_path(), map_location="cpu", weights_only=True)
    return LpipsVgg16(features, {k: v.float() for k, v in lins.items()})


@functools.lru_cache(maxsize=2)  # a suite's jobs share one loaded network
def load_lpips(
    weights: str | None = None, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> LoadedLpips:
    """LPIPS-VGG16 from the VGG16 file `weights` (else the torch hub cache's) on `device`."""
    path, state = vgg16_weights(weights)
    network = build_lpips(state).to(device=device, dtype=dtype)
    return LoadedLpips(network, path, sha256_file(path))


def _check_weights(weights: Path | None) -> None:
    vgg16_weights(weights)


@register_extractor(
    "lpips_vgg16", takes_weights=True, feature_space=False, check_weights=_check_weights
)
def load_lpips_extractor(data, device: torch.device, weights: Path | None) -> Extractor:
    lp = load_lpips(None if weights is None else str(weights), str(device))

    def features(images: torch.Tensor | np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = preprocess(torch.as_tensor(images)).to(device)
            return lp.network.embed(x).cpu().numpy()

    return Extractor(features, lp.weights_sha256, lp.provenance())
