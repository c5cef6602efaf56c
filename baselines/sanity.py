"""Reference "models" with known answers: they give the metrics their floor and ceiling.

copier          returns training images: the best possible FD, and must be flagged as memorizing
pixel-gaussian  independent per-pixel Gaussian fitted to the training set: a weak floor
"""

from __future__ import annotations

import torch

from bench.data import ImageDataset
from bench.models import Budget, Progress, Spent, register_model


def _to_output(x: torch.Tensor, kind: str) -> torch.Tensor:
    return x.float() if kind == "points" else x.round().clamp(0, 255).to(torch.uint8)


@register_model("copier")
class Copier:
    """Samples training examples uniformly without replacement (with, once n exceeds them)."""

    def __init__(self, kind: str = "images"):
        self.kind = kind
        self.train = torch.empty(0)

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        self.train = data.train.x.clone()
        return Spent(steps=0)

    def sample(self, n: int, *, generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
        N = len(self.train)
        reps = -(-n // N)
        idx = torch.cat([torch.randperm(N, generator=generator) for _ in range(reps)])[:n]
        return self.train[idx].clone()

    def state_dict(self) -> dict:
        return {"train": self.train}

    def load_state_dict(self, sd: dict) -> None:
        self.train = sd["train"]


@register_model("pixel-gaussian")
class PixelGaussian:
    """Each pixel (or coordinate) an independent Gaussian with the training mean and std."""

    def __init__(self, kind: str = "images"):
        self.kind = kind
        self.mean = torch.empty(0)
        self.std = torch.empty(0)

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        x = data.train.x.double()
        self.mean, self.std = x.mean(0).float(), x.std(0).float()
        return Spent(steps=0)

    def sample(self, n: int, *, generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
        noise = torch.randn((n, *self.mean.shape), generator=generator)
        return _to_output(self.mean + self.std * noise, self.kind)

    def state_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}

    def load_state_dict(self, sd: dict) -> None:
        self.mean, self.std = sd["mean"], sd["std"]
