"""Building blocks shared by the baseline families: devices, seeding, data batches, the
training loop, image scaling and padding, and small networks (time embedding, MLP)."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from bench.data import ImageDataset
from bench.device import resolve_device as bench_resolve_device
from bench.errors import UserError
from bench.models import Budget, Progress, Spent
from bench.samples import require_finite

# ---------------------------------------------------------------------------- devices


def resolve_device(device: str | None) -> torch.device:
    """The `device` option: default cuda when available, else cpu; never a silent fallback."""
    return bench_resolve_device("auto" if device is None else device)


def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A module's state on the CPU, so checkpoints load on machines without the device."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def checkpoint(config: dict, modules: dict[str, nn.Module | None]) -> dict:
    """A family's checkpoint: its architecture options and each module's CPU state (modules
    that are None, e.g. no point scaler on images, are left out)."""
    return {"config": dict(config)} | {k: cpu_state(m) for k, m in modules.items() if m}


def load_checkpoint(sd: dict, config: dict, family: str, modules: dict[str, nn.Module | None]):
    """Load a checkpoint written by `checkpoint` into the modules, left in eval mode."""
    check_config(sd["config"], config, family)
    for key, module in modules.items():
        if module is not None:
            module.load_state_dict(sd[key])
            module.eval()


def check_config(saved: dict, current: dict, family: str) -> None:
    """Checkpoints record the architecture options; loading into another architecture fails."""
    if dict(saved) != dict(current):
        diff = {
            k: (saved.get(k), current.get(k))
            for k in saved.keys() | current.keys()
            if saved.get(k) != current.get(k)
        }
        raise UserError(
            f"{family} checkpoint was saved with other options (saved, given): {diff}; "
            "build the model with the options it was trained with"
        )


# ---------------------------------------------------------------------------- randomness


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed the global CPU RNG for the block (weight init) without disturbing anyone else."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def device_generator(seed: int, device: torch.device) -> torch.Generator:
    """Generator for training noise, drawn where the model lives (fast on CUDA)."""
    return torch.Generator(device=device).manual_seed(seed)


def randn(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Sampling noise: drawn on the CPU from the caller's generator, then moved, so the
    samples depend on the generator alone and not on the device's RNG."""
    return torch.randn(shape, generator=generator).to(device)


def rand(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(shape, generator=generator).to(device)


# ---------------------------------------------------------------------------- training


def batches(x: torch.Tensor, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Endless minibatches (on the CPU, where the dataset lives) in seeded shuffled epochs;
    the last partial batch of an epoch is dropped, and a tiny dataset gives whole batches."""
    gen = torch.Generator().manual_seed(seed)
    n = len(x)
    batch_size = min(batch_size, n)
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - batch_size + 1, batch_size):
            yield x[perm[i : i + batch_size]]


def labelled_batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """`batches` of (images, labels) pairs, in the same seeded order as batches(x)."""
    for idx in batches(torch.arange(len(x)), batch_size, seed):
        yield x[idx], y[idx]


def train_loop(step: Callable[[], dict[str, float]], budget: Budget, progress: Progress) -> Spent:
    """Run `step` (one optimizer step, returning its losses) budget.steps times, or until
    budget.seconds have passed; progress(k, losses) is called after step k (1-based)."""
    start = time.perf_counter()
    done = 0
    while done < budget.steps:
        if budget.seconds is not None and time.perf_counter() - start >= budget.seconds:
            break
        losses = step()
        done += 1
        progress(done, losses)
    return Spent(steps=done, seconds=time.perf_counter() - start)


# ---------------------------------------------------------------------------- labels


def check_conditional(family: str, kind: str, num_classes: int) -> int:
    """The constructor checks of the class-conditional families (images only)."""
    if kind != "images":
        raise UserError(f"{family}: class-conditional families model images only, not {kind}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise UserError(
            f"{family}: num_classes must be a positive int, not {num_classes!r}; "
            "use a dataset with labels"
        )
    return num_classes


def training_labels(family: str, data: ImageDataset, num_classes: int) -> torch.Tensor:
    """data.train.y as int64, refused (before training) when missing or out of [0, K)."""
    y = data.train.y
    if y is None or len(y) != len(data.train.x):
        raise UserError(
            f"{family} is class-conditional: dataset {data.name!r} has no training labels"
        )
    y = torch.as_tensor(y).long()
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise UserError(
            f"{family}: training labels must lie in [0, {num_classes}); "
            f"found {int(y.min())}..{int(y.max())} (num_classes={num_classes})"
        )
    return y


def sample_labels(family: str, labels: torch.Tensor, n: int, num_classes: int) -> torch.Tensor:
    """The asked labels of `sample`: n int64 values in [0, K)."""
    labels = torch.as_tensor(labels)
    if labels.shape != (n,) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise UserError(
            f"{family}: labels must be {n} integers (one per sample), not {labels.dtype} "
            f"of shape {tuple(labels.shape)}"
        )
    labels = labels.long().cpu()
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise UserError(f"{family}: labels must lie in [0, {num_classes})")
    return labels


# ---------------------------------------------------------------------------- images


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float in [-1, 1]."""
    return x.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] -> uint8 pixels on the CPU; NaN or inf is refused, not cast to 0."""
    require_finite(x)
    return ((x.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def padded_size(size: int, multiple: int) -> int:
    return -(-size // multiple) * multiple


def pow2_size(size: int, minimum: int = 8) -> int:
    """The power of two >= size (28 -> 32) that stride-2 conv stacks work at."""
    return max(minimum, 2 ** math.ceil(math.log2(size)))


def pad_to(x: torch.Tensor, h: int, w: int, value: float = 0.0) -> torch.Tensor:
    """Pad NCHW images symmetrically (extra pixel bottom/right) to h x w."""
    dh, dw = h - x.shape[-2], w - x.shape[-1]
    if dh == dw == 0:
        return x
    return F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), value=value)


def crop_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Inverse of pad_to: the centre h x w of NCHW images."""
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., top : top + h, left : left + w]


# ---------------------------------------------------------------------------- points


class PointScaler(nn.Module):
    """Centres point datasets and scales each coordinate to std `target_std`; the statistics
    travel in the state dict."""

    def __init__(self, dim: int, target_std: float = 1.0):
        super().__init__()
        self.target_std = target_std
        self.register_buffer("loc", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def fit(self, x: torch.Tensor) -> None:
        self.loc.copy_(x.mean(0))
        self.scale.copy_(x.std(0).clamp_min(1e-6) / self.target_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.loc) / self.scale

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.scale + self.loc


# ---------------------------------------------------------------------------- networks


def mlp(
    in_dim: int, out_dim: int, hidden: int, depth: int, act: Callable[[], nn.Module] = nn.ReLU
) -> nn.Sequential:
    """`depth` hidden layers of width `hidden`; used by the families' point variants."""
    layers: list[nn.Module] = []
    dim = in_dim
    for _ in range(depth):
        layers += [nn.Linear(dim, hidden), act()]
        dim = hidden
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


class SinusoidalEmbedding(nn.Module):
    """Transformer-style embedding of a (float) timestep, as in DDPM."""

    def __init__(self, dim: int, max_period: float = 10_000.0):
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half) / half)
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = t.float()[:, None] * self.freqs[None]
        return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class ConvGenerator(nn.Module):
    """DCGAN generator (Radford et al. 2016): z -> 4x4 by a transposed conv, then stride-2
    transposed convs with batch norm and ReLU up to `size`, and a 3x3 conv to the image
    channels with tanh. Channels halve at each upsampling, ending at `width`."""

    def __init__(self, z_dim: int, channels: int, size: int, width: int):
        super().__init__()
        n_up = int(math.log2(size // 4))
        ch = width * 2**n_up
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, ch, 4, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
        ]
        for _ in range(n_up):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(),
            ]
            ch //= 2
        layers += [nn.Conv2d(ch, channels, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class ConvDiscriminator(nn.Module):
    """DCGAN discriminator: a 3x3 conv, then stride-2 convs with LeakyReLU(0.2) down to 4x4
    (channels doubling from `width`), and a 4x4 conv to one logit. Batch norm after each
    strided conv when `batch_norm` (DCGAN); none for the WGAN-GP critic, whose gradient
    penalty is per example."""

    def __init__(self, channels: int, size: int, width: int, batch_norm: bool):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(0.2)]
        ch = width
        while size > 4:
            layers.append(nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(2 * ch))
            layers.append(nn.LeakyReLU(0.2))
            ch, size = 2 * ch, size // 2
        layers.append(nn.Conv2d(ch, 1, 4))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


def dcgan_init(module: nn.Module) -> None:
    """Weights N(0, 0.02), batch-norm scales N(1, 0.02), as in the DCGAN paper."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
