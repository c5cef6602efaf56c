"""RealNVP (Dinh et al. 2017): an invertible flow of affine coupling layers, trained by exact
maximum likelihood.

Preprocessing, as in the paper: uniform dequantization y = (x + u) / 256 with u ~ U[0, 1)^D,
then a logit transform z0 = logit(a + (1 - 2a) y) with a = 0.05. Architecture (multi-scale):
at each scale, 3 affine couplings with alternating checkerboard masks, a squeeze (2x2
pixels -> 4 channels), 3 couplings with alternating channel masks, then half the channels
are factored out to the N(0, I) prior; the last scale has 4 checkerboard couplings. Each
coupling is z = m * x + (1 - m) * (x * exp(s) + t) with s, t from a small ResNet on m * x,
s = scale * tanh(.), started at the identity.

`bits_per_dim(x)` is exact for the dequantized density: -log p(y) accounts for the flow's
log-determinant, the logit transform's and the [0, 256) -> [0, 1) scaling's (-D log 256), so
it is the standard upper bound (by Jensen) on the discrete NLL, estimated with one
dequantization draw per image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from baselines.layers import (
    batches,
    checkpoint,
    device_generator,
    load_checkpoint,
    rand,
    randn,
    resolve_device,
    seeded,
    train_loop,
)
from bench.data import ImageDataset
from bench.errors import UserError
from bench.models import Budget, Progress, Spent, register_model
from bench.samples import require_finite

ALPHA = 0.05  # logit transform margin


def checkerboard(channels: int, h: int, w: int, parity: int) -> torch.Tensor:
    mask = ((torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2 == parity).float()
    return mask.expand(channels, h, w).clone()


def channel_mask(channels: int, h: int, w: int, parity: int) -> torch.Tensor:
    mask = torch.zeros(channels, h, w)
    half = slice(0, channels // 2) if parity == 0 else slice(channels // 2, channels)
    mask[half] = 1.0
    return mask


class ResNet(nn.Module):
    """s, t network of a coupling: conv, `blocks` residual blocks, conv to 2 * channels."""

    def __init__(self, cin: int, cout: int, width: int, blocks: int):
        super().__init__()
        self.inp = nn.Conv2d(cin, width, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1),
            )
            for _ in range(blocks)
        )
        self.out = nn.Sequential(nn.ReLU(), nn.Conv2d(width, cout, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)  # the coupling starts as the identity
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


class Coupling(nn.Module):
    def __init__(self, mask: torch.Tensor, width: int, blocks: int):
        super().__init__()
        channels = mask.shape[0]
        self.register_buffer("mask", mask, persistent=False)
        self.net = ResNet(channels + 1, 2 * channels, width, blocks)
        self.scale = nn.Parameter(torch.ones(channels, 1, 1))

    def _s_t(self, x_kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask_channel = self.mask[:1].expand(len(x_kept), 1, *self.mask.shape[1:])
        s, t = self.net(torch.cat([x_kept, mask_channel], dim=1)).chunk(2, dim=1)
        free = 1 - self.mask
        return self.scale * torch.tanh(s) * free, t * free

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x -> z and log|det dz/dx| per example."""
        s, t = self._s_t(x * self.mask)
        return x * self.mask + (1 - self.mask) * (x * s.exp() + t), s.flatten(1).sum(1)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        s, t = self._s_t(z * self.mask)
        return z * self.mask + (1 - self.mask) * ((z - t) * (-s).exp())


class Flow(nn.Module):
    def __init__(self, shape: tuple[int, int, int], scales: int, width: int, blocks: int):
        super().__init__()
        C, H, W = shape
        self.checker, self.channel = nn.ModuleList(), nn.ModuleList()
        self.z_shapes: list[tuple[int, int, int]] = []
        for s in range(scales):
            last = s == scales - 1
            n_checker = 4 if last else 3
            self.checker.append(
                nn.ModuleList(
                    Coupling(checkerboard(C, H, W, i % 2), width, blocks) for i in range(n_checker)
                )
            )
            if last:
                self.z_shapes.append((C, H, W))
                break
            C, H, W = 4 * C, H // 2, W // 2
            self.channel.append(
                nn.ModuleList(
                    Coupling(channel_mask(C, H, W, i % 2), width, blocks) for i in range(3)
                )
            )
            self.z_shapes.append((C // 2, H, W))
            C //= 2

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x -> latents (one per scale) and log|det| per example."""
        zs, logdet = [], torch.zeros(len(x), device=x.device)
        for s, checker in enumerate(self.checker):
            for layer in checker:
                x, ld = layer(x)
                logdet = logdet + ld
            if s == len(self.channel):
                break
            x = F.pixel_unshuffle(x, 2)
            for layer in self.channel[s]:
                x, ld = layer(x)
                logdet = logdet + ld
            z, x = x.chunk(2, dim=1)
            zs.append(z)
        zs.append(x)
        return zs, logdet

    def inverse(self, zs: list[torch.Tensor]) -> torch.Tensor:
        x = zs[-1]
        for s in reversed(range(len(self.checker))):
            if s < len(self.channel):
                x = torch.cat([zs[s], x], dim=1)
                for layer in reversed(self.channel[s]):
                    x = layer.inverse(x)
                x = F.pixel_shuffle(x, 2)
            for layer in reversed(self.checker[s]):
                x = layer.inverse(x)
        return x


def _default_scales(h: int, w: int) -> int:
    scales = 2 if max(h, w) <= 8 else 3
    while scales > 1 and (h % 2 ** (scales - 1) or w % 2 ** (scales - 1)):
        scales -= 1
    return scales


@register_model("realnvp")
class RealNVP:
    """RealNVP with checkerboard and channel couplings.

    Options: scales=None (auto: 2 up to 8 px, else 3, fewer when H, W are not divisible),
    width=None (auto: 16 up to 8 px, else 64) and blocks=1 (each coupling's ResNet),
    batch_size=64, lr=1e-3, weight_decay=5e-5, grad_clip=100, temperature=1.0 (prior std
    when sampling), device=None (cuda if available).
    """

    nfe = 1  # one network evaluation per sample
    # Options that change sampling or evaluation only: one trained model serves them all.
    SAMPLE_OPTIONS = ("temperature",)

    def __init__(
        self,
        shape: tuple[int, ...],
        kind: str = "images",
        *,
        scales: int | None = None,
        width: int | None = None,
        blocks: int = 1,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 5e-5,
        grad_clip: float = 100.0,
        temperature: float = 1.0,
        device: str | None = None,
    ):
        if kind != "images":
            raise UserError("realnvp models images only; use another family for points")
        C, H, W = shape
        scales = scales or _default_scales(H, W)
        width = width or (16 if max(H, W) <= 8 else 64)
        if H % 2 ** (scales - 1) or W % 2 ** (scales - 1):
            raise UserError(f"realnvp: {H}x{W} images cannot be squeezed {scales - 1} times")
        self.shape, self.kind = tuple(shape), kind
        self.device = resolve_device(device)
        self.batch_size, self.lr, self.weight_decay = batch_size, lr, weight_decay
        self.grad_clip, self.temperature = grad_clip, temperature
        self.config = {"scales": scales, "width": width, "blocks": blocks}
        self._build(seed=0)

    def _build(self, seed: int) -> None:
        c = self.config
        with seeded(seed):
            self.flow = Flow(self.shape, c["scales"], c["width"], c["blocks"])
        self.flow.to(self.device)

    def _nll(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """-log p of the dequantized pixels x + u on [0, 256)^D, in nats per image."""
        y = (x.to(self.device).float() + u) / 256.0
        p = ALPHA + (1 - 2 * ALPHA) * y
        z0 = torch.log(p) - torch.log1p(-p)
        logdet_pre = (math.log(1 - 2 * ALPHA) - torch.log(p) - torch.log1p(-p)).flatten(1).sum(1)
        logdet_pre = logdet_pre - math.prod(self.shape) * math.log(256.0)
        zs, logdet = self.flow(z0)
        log_prior = sum((-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1) for z in zs)
        return -(log_prior + logdet + logdet_pre)

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        self._build(seed)
        opt = torch.optim.Adam(self.flow.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        gen = device_generator(seed, self.device)
        stream = batches(data.train.x, self.batch_size, seed)
        per_bit = math.prod(self.shape) * math.log(2)
        self.flow.train()

        def step() -> dict[str, float]:
            x = next(stream).to(self.device)
            u = torch.rand(x.shape, generator=gen, device=self.device)
            loss = self._nll(x, u).mean() / per_bit  # bits per dim
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.flow.parameters(), self.grad_clip)
            opt.step()
            return {"loss": loss.item()}

        spent = train_loop(step, budget, progress)
        self.flow.eval()
        return spent

    @torch.inference_mode()
    def sample(self, n: int, *, generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
        self.flow.eval()
        out = []
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            zs = [
                self.temperature * randn((m, *s), generator, self.device)
                for s in self.flow.z_shapes
            ]
            p = torch.sigmoid(self.flow.inverse(zs))
            y = ((p - ALPHA) / (1 - 2 * ALPHA)).clamp(0, 1)
            require_finite(y)
            out.append((y * 256).floor().clamp(0, 255).to(torch.uint8).cpu())
        return torch.cat(out)

    @torch.inference_mode()
    def log_prob(
        self, x: torch.Tensor, *, batch_size: int = 256, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """log p of x + u (one dequantization draw) in nats per image: a lower bound, in
        expectation, on log P(x) of the 8-bit pixels."""
        generator = generator or torch.Generator().manual_seed(0)
        self.flow.eval()
        return torch.cat(
            [
                -self._nll(xb, rand(xb.shape, generator, self.device)).cpu()
                for xb in x.split(batch_size)
            ]
        )

    def bits_per_dim(
        self, x: torch.Tensor, *, batch_size: int = 256, generator: torch.Generator | None = None
    ) -> float:
        """Mean NLL over x (uint8 NCHW) in bits per dimension (uniform dequantization)."""
        nats = -self.log_prob(x, batch_size=batch_size, generator=generator)
        return float(nats.mean() / (math.prod(self.shape) * math.log(2)))

    def state_dict(self) -> dict:
        return checkpoint(self.config, self._checkpointed())

    def load_state_dict(self, sd: dict) -> None:
        load_checkpoint(sd, self.config, "realnvp", self._checkpointed())

    def _checkpointed(self) -> dict:
        return {"flow": self.flow}
