"""DCGAN (Radford et al. 2016) with the non-saturating GAN loss (Goodfellow et al. 2014).

Generator: transposed convolutions with batch norm and ReLU, tanh output; discriminator:
strided convolutions with batch norm and LeakyReLU(0.2) (architecture in layers.py), both
initialized N(0, 0.02) and trained with Adam(2e-4, betas (0.5, 0.999)). Images are
generated at the power of two >= their size and cropped (28 <- 32); real and generated
images are padded back with black before the discriminator sees them.

One optimizer step = one discriminator update and one generator update on a batch.
Point datasets use MLPs (ReLU generator, LeakyReLU discriminator) on standardized points.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.layers import (
    ConvDiscriminator,
    ConvGenerator,
    PointScaler,
    batches,
    checkpoint,
    crop_to,
    dcgan_init,
    device_generator,
    load_checkpoint,
    mlp,
    pad_to,
    pow2_size,
    randn,
    resolve_device,
    seeded,
    to_signed,
    to_uint8,
    train_loop,
)
from bench.data import ImageDataset
from bench.models import Budget, Progress, Spent, register_model


@register_model("dcgan")
class DCGAN:
    """DCGAN; options: z_dim=64 (points: 8), width=32 (generator channels at full
    resolution, discriminator channels of its first layer; doubled per halving),
    hidden=128 and depth=3 (points), batch_size=None (64; points: 256), lr=2e-4, betas=(0.5, 0.999),
    device=None (cuda if available)."""

    nfe = 1  # one network evaluation per sample
    latent_interpolation = "slerp"  # perceptual path length's paths: great circles in Z

    def __init__(
        self,
        shape: tuple[int, ...],
        kind: str = "images",
        *,
        z_dim: int | None = None,
        width: int = 32,
        hidden: int = 128,
        depth: int = 3,
        batch_size: int | None = None,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        device: str | None = None,
    ):
        self.shape, self.kind = tuple(shape), kind
        self.device = resolve_device(device)
        self.batch_size = batch_size or (256 if kind == "points" else 64)
        self.lr, self.betas = lr, tuple(betas)
        z_dim = z_dim or (8 if kind == "points" else 64)
        self.config = {"z_dim": z_dim, "width": width, "hidden": hidden, "depth": depth}
        self.size = pow2_size(max(self.shape[1:])) if kind == "images" else 0
        self.scaler = PointScaler(shape[0]).to(self.device) if kind == "points" else None
        self._build(seed=0)

    def _build(self, seed: int) -> None:
        c = self.config
        with seeded(seed):
            if self.kind == "points":
                dim = self.shape[0]
                self.G = mlp(c["z_dim"], dim, c["hidden"], c["depth"], nn.ReLU)
                self.D = mlp(dim, 1, c["hidden"], c["depth"], lambda: nn.LeakyReLU(0.2))
            else:
                self.G = ConvGenerator(c["z_dim"], self.shape[0], self.size, c["width"])
                self.D = ConvDiscriminator(self.shape[0], self.size, c["width"], batch_norm=True)
                dcgan_init(self.G)
                dcgan_init(self.D)
        self.G.to(self.device)
        self.D.to(self.device)

    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        """Generator output in the data's (standardized / [-1, 1]) coordinates and shape."""
        x = self.G(z)
        return x if self.kind == "points" else crop_to(x, *self.shape[1:])

    def _discriminate(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "images":
            x = pad_to(x, self.size, self.size, value=-1.0)
        return self.D(x).flatten()

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        return self.scaler(x) if self.scaler is not None else to_signed(x)

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        self._build(seed)
        if self.scaler is not None:
            self.scaler.fit(data.train.x.to(self.device))
        opt_g = torch.optim.Adam(self.G.parameters(), lr=self.lr, betas=self.betas)
        opt_d = torch.optim.Adam(self.D.parameters(), lr=self.lr, betas=self.betas)
        gen = device_generator(seed, self.device)
        stream = batches(data.train.x, self.batch_size, seed)
        z_dim = self.config["z_dim"]
        self.G.train()
        self.D.train()

        def step() -> dict[str, float]:
            real = self._prepare(next(stream))
            n = len(real)
            fake = self._generate(torch.randn((n, z_dim), generator=gen, device=self.device))
            # discriminator: -log D(real) - log(1 - D(fake)), in logits
            d_real, d_fake = self._discriminate(real), self._discriminate(fake.detach())
            loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            # generator, non-saturating: -log D(G(z))
            loss_g = F.softplus(-self._discriminate(fake)).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            return {"loss": loss_d.item(), "loss_d": loss_d.item(), "loss_g": loss_g.item()}

        spent = train_loop(step, budget, progress)
        self.G.eval()
        self.D.eval()
        return spent

    @torch.inference_mode()
    def sample(self, n: int, *, generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
        self.G.eval()
        z_dim = self.config["z_dim"]
        x = torch.cat(
            [
                self._generate(randn((min(batch_size, n - i), z_dim), generator, self.device))
                for i in range(0, n, batch_size)
            ]
        )
        if self.scaler is not None:
            return self.scaler.inverse(x).float().cpu()
        return to_uint8(x)

    def draw_latents(self, n: int, *, generator: torch.Generator) -> torch.Tensor:
        """n latents z from `generator` (the latent interpolation of perceptual path length)."""
        return randn((n, self.config["z_dim"]), generator, self.device)

    @torch.inference_mode()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The generator's float output for latents z, unquantized."""
        self.G.eval()
        return self._generate(z.to(self.device)).float()

    def state_dict(self) -> dict:
        return checkpoint(self.config, self._checkpointed())

    def load_state_dict(self, sd: dict) -> None:
        load_checkpoint(sd, self.config, "dcgan", self._checkpointed())

    def _checkpointed(self) -> dict:
        return {"G": self.G, "D": self.D, "scaler": self.scaler}
