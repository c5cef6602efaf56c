"""WGAN-GP (Gulrajani et al. 2017): a Wasserstein critic kept 1-Lipschitz by a gradient
penalty lambda * (||grad_x D(x_hat)|| - 1)^2 on random interpolates x_hat of real and
generated samples; lambda = 10, n_critic = 5 critic updates per generator update, Adam(1e-4,
betas (0.0, 0.9)) for both.

Generator: the DCGAN generator (layers.py, with batch norm); critic: the DCGAN
discriminator without batch norm (the penalty is per example). Images are generated at the
power of two >= their size and cropped; the critic sees them padded back with black.

One optimizer step (what Budget.steps counts and progress reports) = one generator update,
preceded by its n_critic critic updates, each on a fresh real batch.
Point datasets use MLPs on standardized points.
"""

from __future__ import annotations

import torch
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


@register_model("wgan-gp")
class WGANGP:
    """WGAN-GP; options: z_dim=64 (points: 8), width=16 (as in dcgan), hidden=128 and
    depth=3 (points), batch_size=None (64; points: 256), lr=1e-4, betas=(0.0, 0.9),
    n_critic=5, gp_weight=10, device=None (cuda if available)."""

    nfe = 1  # one network evaluation per sample
    latent_interpolation = "slerp"  # perceptual path length's paths: great circles in Z

    def __init__(
        self,
        shape: tuple[int, ...],
        kind: str = "images",
        *,
        z_dim: int | None = None,
        width: int = 16,
        hidden: int = 128,
        depth: int = 3,
        batch_size: int | None = None,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        n_critic: int = 5,
        gp_weight: float = 10.0,
        device: str | None = None,
    ):
        self.shape, self.kind = tuple(shape), kind
        self.device = resolve_device(device)
        self.batch_size = batch_size or (256 if kind == "points" else 64)
        self.lr, self.betas = lr, tuple(betas)
        self.n_critic, self.gp_weight = n_critic, gp_weight
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
                self.D = ConvDiscriminator(self.shape[0], self.size, c["width"], batch_norm=False)
                dcgan_init(self.G)
        self.G.to(self.device)
        self.D.to(self.device)

    # Copied from baselines.dcgan.DCGAN._generate
    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        """Generator output in the data's (standardized / [-1, 1]) coordinates and shape."""
        x = self.G(z)
        return x if self.kind == "points" else crop_to(x, *self.shape[1:])

    # Copied from baselines.dcgan.DCGAN._discriminate with _discriminate->_critic
    def _critic(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "images":
            x = pad_to(x, self.size, self.size, value=-1.0)
        return self.D(x).flatten()

    # Copied from baselines.dcgan.DCGAN._prepare
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

        def noise(n: int) -> torch.Tensor:
            return torch.randn((n, z_dim), generator=gen, device=self.device)

        def critic_step() -> tuple[torch.Tensor, torch.Tensor]:
            real = self._prepare(next(stream))
            n = len(real)
            with torch.no_grad():
                fake = self._generate(noise(n))
            alpha = torch.rand((n,) + (1,) * (real.dim() - 1), generator=gen, device=self.device)
            mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(self._critic(mixed).sum(), mixed, create_graph=True)
            penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
            d_real, d_fake = self._critic(torch.cat([real, fake])).split(n)
            wasserstein = d_real.mean() - d_fake.mean()
            loss = -wasserstein + self.gp_weight * penalty
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
            return loss.detach(), wasserstein.detach()

        def step() -> dict[str, float]:
            for _ in range(self.n_critic):
                loss_d, wasserstein = critic_step()
            loss_g = -self._critic(self._generate(noise(self.batch_size))).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            return {
                "loss": loss_d.item(),
                "loss_d": loss_d.item(),
                "loss_g": loss_g.item(),
                "wasserstein": wasserstein.item(),
            }

        spent = train_loop(step, budget, progress)
        self.G.eval()
        self.D.eval()
        return spent

    # Copied from baselines.dcgan.DCGAN.sample
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

    # Copied from baselines.dcgan.DCGAN.draw_latents
    def draw_latents(self, n: int, *, generator: torch.Generator) -> torch.Tensor:
        """n latents z from `generator` (the latent interpolation of perceptual path length)."""
        return randn((n, self.config["z_dim"]), generator, self.device)

    # Copied from baselines.dcgan.DCGAN.decode
    @torch.inference_mode()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The generator's float output for latents z, unquantized."""
        self.G.eval()
        return self._generate(z.to(self.device)).float()

    # Copied from baselines.dcgan.DCGAN.state_dict
    def state_dict(self) -> dict:
        return checkpoint(self.config, self._checkpointed())

    # Copied from baselines.dcgan.DCGAN.load_state_dict with dcgan->wgan-gp
    def load_state_dict(self, sd: dict) -> None:
        load_checkpoint(sd, self.config, "wgan-gp", self._checkpointed())

    # Copied from baselines.dcgan.DCGAN._checkpointed
    def _checkpointed(self) -> dict:
        return {"G": self.G, "D": self.D, "scaler": self.scaler}
