"""A small per-dataset CNN classifier: penultimate-layer features for Fréchet distance and
nearest-neighbour metrics, predicted labels for class coverage.

The built-in labelled datasets named in weights/classifiers.json use the classifier shipped
beside it (trained once by scripts/train_classifiers.py; the manifest holds its sha256,
test accuracy and the content hash of the data it was trained on), so their feature space
is the same on every machine; stacked:BASE uses BASE's. Any other
labelled dataset gets one trained here on first use, cached under the dataset's content
hash and the recipe; float32 training ends at different weights on different CPUs, so
such a classifier's features are comparable only within one machine. The record says
which (`source`: "shipped" or "trained-here").
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.cache import Cache, default_cache_dir, hash_key
from bench.data import ImageDataset
from bench.errors import UserError
from bench.features import Extractor, register_extractor
from bench.progress import progress_bar

SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_MANIFEST = SHIPPED_DIR / "classifiers.json"
# The protocol's floor on each shipped classifier's test accuracy (PROTOCOLS.md).
ACCURACY_FLOOR = {
    "digits": 0.97,
    "mnist5k": 0.95,
    "fashion-mnist": 0.90,
    "shapes": 0.95,
    "animal-mnist": 0.90,
}

# Inference runs in float64 and rounds the result to float32. float32 convolutions take
# ISA-specific kernels (AVX-512, AVX2, none): measured on the shipped digits classifier,
# their features differ by up to 7e-7 relative, enough to flip a strict `<` in a k-NN
# count. float64 results differ only in the last bits of float64, so after rounding the
# float32 features are bitwise identical across ISAs (about 3x the CPU time of float32).
INFERENCE_DTYPE = torch.float64

RECIPE = {
    "version": 2,
    "width": 64,
    "feature_dim": 128,
    "epochs": 30,
    "max_steps": 3000,
    "batch": 64,
    "lr": 2e-3,
}


class SmallCNN(nn.Module):
    """Three conv blocks, global average pooling, a 128-d feature layer, then the logits."""

    def __init__(self, channels: int, num_classes: int, width: int, feature_dim: int):
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
            )

        self.body = nn.Sequential(
            block(channels, width, 1),
            block(width, width, 1),
            block(width, 2 * width, 2),
            block(2 * width, 2 * width, 1),
            block(2 * width, 4 * width, 2),
        )
        self.features = nn.Sequential(nn.Linear(4 * width, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.body(x).mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


@dataclass
class Classifier:
    net: SmallCNN
    test_accuracy: float
    weights_sha256: str
    device: torch.device
    source: str = "trained-here"  # or "shipped": the package's file, the same everywhere
    _inference_net: SmallCNN = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._inference_net = copy.deepcopy(self.net).to(self.device, INFERENCE_DTYPE).eval()

    @torch.inference_mode()
    def _run(self, images: torch.Tensor, batch_size: int, head: bool) -> np.ndarray:
        check_images(images, self.net.body[0][0].in_channels)
        net = self._inference_net
        out = []
        for i in range(0, len(images), batch_size):
            x = to_input(images[i : i + batch_size].to(self.device), INFERENCE_DTYPE)
            out.append((net(x) if head else net.embed(x)).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)

    def features(self, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
        """Penultimate (128-d) features as float32; the same bits whichever SIMD kernels
        (AVX-512, AVX2, none) the CPU runs (see INFERENCE_DTYPE)."""
        return self._run(images, batch_size, head=False)

    def logits(self, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
        return self._run(images, batch_size, head=True)

    @torch.inference_mode()
    def embed_float(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (INFERENCE_DTYPE) of float NCHW images in [-1, 1], not
        quantized to uint8 first: a latent path's images 1e-4 apart (perceptual path length)."""
        return self._inference_net.embed(x.to(self.device, INFERENCE_DTYPE))

    def predict(self, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
        return self.logits(images, batch_size).argmax(1)


@dataclass
class StackedClassifier:
    """The base dataset's classifier on each channel of stacked images: features are the
    three channels' features side by side, the label is the triple of channel classes."""

    base: Classifier
    base_classes: int

    @property
    def test_accuracy(self) -> float:
        return self.base.test_accuracy

    @property
    def weights_sha256(self) -> str:
        return self.base.weights_sha256

    @property
    def source(self) -> str:
        return self.base.source

    def _channels(self, images: torch.Tensor) -> list[torch.Tensor]:
        check_images(images, 3)
        return [images[:, c : c + 1] for c in range(3)]

    def features(self, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
        return np.concatenate(
            [self.base.features(c, batch_size) for c in self._channels(images)], 1
        )

    def embed_float(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.base.embed_float(x[:, c : c + 1]) for c in range(3)], 1)

    def channel_labels(self, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
        """(n, 3): the base class of each channel."""
        return np.stack([self.base.predict(c, batch_size) for c in self._channels(images)], 1)

    def logits(self, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
        """log p(triple) = sum of the channels' log-probabilities, over all k**3 triples."""
        k = self.base_classes
        lp = [
            torch.from_numpy(self.base.logits(c, batch_size)).log_softmax(1)
            for c in self._channels(images)
        ]
        joint = lp[0][:, :, None, None] + lp[1][:, None, :, None] + lp[2][:, None, None, :]
        return joint.reshape(len(images), k**3).numpy()

    def predict(self, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
        labels = self.channel_labels(images, batch_size)
        return (labels[:, 0] * self.base_classes + labels[:, 1]) * self.base_classes + labels[:, 2]


def check_images(images: torch.Tensor, channels: int) -> None:
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != channels:
        raise UserError(
            f"classifier features need uint8 NCHW images with {channels} channel(s), "
            f"got {images.dtype} {tuple(images.shape)}"
        )


def to_input(x_uint8: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    # A fixed memory layout: 1-channel images with odd strides can look channels-last and
    # take another convolution path, changing features in the last bits.
    x = x_uint8.to(dtype, memory_format=torch.contiguous_format)
    return x.div_(127.5).sub_(1.0)


def build_net(data: ImageDataset) -> SmallCNN:
    """An untrained SmallCNN shaped for `data` (RECIPE's width and feature size)."""
    return SmallCNN(data.shape[0], data.num_classes, RECIPE["width"], RECIPE["feature_dim"])


def train_classifier(data: ImageDataset, device: torch.device, seed: int = 0) -> dict:
    """Train on the training split; returns a state dict plus the test accuracy."""
    if data.kind != "images" or data.train.y is None or not data.num_classes:
        raise UserError(f"dataset {data.name!r} has no labels: the classifier extractor needs them")
    net = fit_classifier(
        data.train.x,
        data.train.y,
        data.num_classes,
        device,
        seed=seed,
        desc=f"training the {data.name} classifier",
    )
    state = {k: v.cpu() for k, v in net.state_dict().items()}
    return {"state": state, "test_accuracy": measure_accuracy(net, data, device)}


def fit_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    device: torch.device,
    *,
    seed: int = 0,
    recipe: dict = RECIPE,
    desc: str = "training a classifier",
) -> SmallCNN:
    """A SmallCNN trained by `recipe` on uint8 NCHW `images` with int64 `labels` in
    [0, num_classes): the shipped classifiers' training, and CAS's on generated images."""
    if images.ndim != 4 or labels.shape != (len(images),):
        raise UserError(
            f"a classifier trains on NCHW images with one label each, got images of shape "
            f"{tuple(images.shape)} and labels of shape {tuple(labels.shape)}"
        )
    check_images(images, images.shape[1])
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    r = recipe
    net = SmallCNN(images.shape[1], num_classes, r["width"], r["feature_dim"]).to(device)
    steps_per_epoch = -(-len(images) // r["batch"])
    total = min(r["epochs"] * steps_per_epoch, r["max_steps"])
    opt = torch.optim.AdamW(net.parameters(), lr=r["lr"], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, r["lr"], total_steps=total)
    net.train()
    for idx in progress_bar(
        iterable=batch_indices(len(images), r["batch"], total, g),
        total=total,
        desc=desc,
        unit="step",
    ):
        x = augment(to_input(images[idx]), g).to(device)
        loss = F.cross_entropy(net(x), labels[idx].to(device), label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def batch_indices(n: int, batch: int, steps: int, g: torch.Generator):
    """`steps` minibatches of indices, reshuffling every epoch."""
    done = 0
    while True:
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch):
            if done == steps:
                return
            yield perm[i : i + batch]
            done += 1


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 1/8 of the side, a cheap regularizer for small datasets."""
    pad = max(1, x.shape[-1] // 8)
    padded = F.pad(x, (pad,) * 4, value=-1.0)
    dx, dy = torch.randint(0, 2 * pad + 1, (2,), generator=g).tolist()
    return padded[..., dy : dy + x.shape[-2], dx : dx + x.shape[-1]]


def measure_accuracy(net: SmallCNN, data: ImageDataset, device: torch.device) -> float:
    """Top-1 accuracy on the test split, through the inference path every user gets."""
    clf = Classifier(net, 0.0, "", device)
    return float((clf.predict(data.test.x) == data.test.y.numpy()).mean())


def state_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """A float32 state dict as torch.save writes it (the bytes whose sha256 is recorded)."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu().to(torch.float32).contiguous() for k, v in state.items()}, buf)
    return buf.getvalue()


@cache
def shipped_manifest() -> dict[str, dict]:
    """weights/classifiers.json: per dataset name, its file, sha256, test accuracy, the
    content hash of the data it was trained on, and how it was trained."""
    return json.loads(SHIPPED_MANIFEST.read_text())


def load_shipped(data: ImageDataset, device: torch.device) -> Classifier | None:
    """The shipped classifier for `data`, or None when none ships for this exact data."""
    entry = shipped_manifest().get(data.name)
    if entry is None:
        return None
    if entry["dataset_content_hash"] != data.content_hash:
        warnings.warn(
            f"dataset {data.name!r} has content hash {data.content_hash}, but the shipped "
            f"classifier was trained on {entry['dataset_content_hash']}; training one here "
            "(its features are comparable only on this machine)",
            stacklevel=3,
        )
        return None
    path = SHIPPED_DIR / entry["file"]
    blob = path.read_bytes() if path.is_file() else b""
    if hashlib.sha256(blob).hexdigest() != entry["sha256"]:
        raise UserError(
            f"the shipped classifier {path} is missing or does not match its recorded sha256 "
            f"{entry['sha256'][:12]}...; reinstall genbench"
        )
    net = build_net(data)
    net.load_state_dict(torch.load(io.BytesIO(blob), weights_only=True))
    return Classifier(
        net.to(device).eval(), entry["test_accuracy"], entry["sha256"], device, "shipped"
    )


def load_classifier(
    data: ImageDataset, device: torch.device | str = "cpu"
) -> Classifier | StackedClassifier:
    """The dataset's shipped classifier, else the cached one trained here on first use (for
    stacked:BASE, the base dataset's classifier on each channel; for a translation task,
    its target domain's)."""
    device = torch.device(device)
    if "target" in data.meta:  # a translation task: its target domain's classifier
        return load_classifier(data.meta["target"], device)
    if "stacked_base" in data.meta:
        base = data.meta["stacked_base"]
        return StackedClassifier(load_classifier(base, device), base.num_classes)
    shipped = load_shipped(data, device)
    if shipped is not None:
        return shipped
    cache = Cache(default_cache_dir())
    key = hash_key("classifier", data.content_hash, RECIPE)
    entry = cache.get_or_compute("classifier", key, lambda: train_classifier(data, device))
    net = build_net(data)
    net.load_state_dict(entry["state"])
    sha = hashlib.sha256(state_bytes(entry["state"])).hexdigest()
    return Classifier(net.to(device).eval(), entry["test_accuracy"], sha, device)


def _feature_dim(data: ImageDataset) -> int:
    return RECIPE["feature_dim"] * (3 if "stacked_base" in data.meta else 1)


@register_extractor("classifier", needs_labels=True, dim=_feature_dim)
def load_classifier_extractor(data: ImageDataset, device: torch.device, weights: None) -> Extractor:
    """Penultimate features of the dataset's own classifier."""
    clf = load_classifier(data, device)
    return Extractor(
        clf.features,
        clf.weights_sha256,
        {
            "classifier_weights_sha256": clf.weights_sha256,
            "classifier_test_accuracy": clf.test_accuracy,
            "classifier_source": clf.source,  # shipped (same everywhere) or trained-here
        },
        protocol=f"inference {INFERENCE_DTYPE}",
    )
