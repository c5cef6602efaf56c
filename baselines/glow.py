"""Glow (Kingma & Dhariwal 2018): a multi-scale flow of steps (actnorm, invertible 1x1
convolution, affine coupling), trained by exact maximum likelihood.

Followed: the paper, openai/glow `model.py` (actnorm's data-dependent initialization,
`invertible_1x1_conv` with the LU decomposition, `f` = conv3x3 -> ReLU -> conv1x1 -> ReLU ->
zero-initialized conv3x3 with a log-scale factor 3, the coupling's scale sigmoid(h + 2),
`split2d` with a learned prior of the factored-out half given the kept half, a learned top
prior, and sampling with the prior's std times a temperature) and rosinality/glow-pytorch
`model.py` (the PyTorch layout of the same layers). Left out: actnorm inside `f` and the
class-conditional prior (`ycond`).

Architecture, per level: squeeze (2x2 pixels -> 4 channels), `depth` steps, then (except
at the last level) half the channels are factored out with N(mean, std^2) from a
zero-initialized conv of the other half. Each step: actnorm (per-channel affine, initialized
on the first training batch to zero mean and unit variance), a 1x1 convolution W = P L (U +
diag(sign * exp(log_s))) with P fixed (log|det| = H W sum log_s), and an affine coupling
y_b = (x_b + t(x_a)) * sigmoid(h(x_a) + 2). The flow maps x to standardized latents
eps = (z - mean) / std, one per level, so that x -> eps is one invertible map whose
log-determinant includes -sum log std and the prior is N(0, I).

Preprocessing and accounting are realnvp.py's, so that the two families' bits/dim are
comparable: uniform dequantization y = (x + u) / 256 with u ~ U[0, 1)^D, then the logit
transform logit(a + (1 - 2a) y) with a = 0.05. Glow itself models y - 1/2; on digits, whose
background is one pixel value, a trial at the suite's budget (depth 4, width 32) reached
6.13 test bits/dim on y - 1/2 and 5.32 with the logit. `bits_per_dim(x)` is exact for the
dequantized density on [0, 256)^D (the log-determinants of the logit transform and of the
-D log 256 scaling are counted), the standard upper bound on the discrete NLL, with one
dequantization draw per image.

Sampling option `temperature` T: eps ~ N(0, T^2 I) at every level (openai/glow's
`eps_std`); T < 1 trades diversity for quality (the paper's Figure 8). Images only.
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

LOG_2PI = math.log(2 * math.pi)
ALPHA = 0.05  # logit transform margin, as realnvp.py
# Rounds of redrawing the prior draws whose inverse overflowed float32 (see GlowModel.sample)
REDRAWS = 3


def _per_example(value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A log-determinant that is the same for every example, as one value per example."""
    return value.expand(len(x))


class ActNorm(nn.Module):
    """y = (x + loc) * exp(log_scale) per channel; `initialize_next` makes the next forward
    set loc, log_scale so that its batch comes out with zero mean and unit variance."""

    def __init__(self, channels: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.initialize_next = False

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.initialize_next:
            with torch.no_grad():
                self.loc.copy_(-x.mean((0, 2, 3), keepdim=True))
                self.log_scale.copy_(-torch.log(x.std((0, 2, 3), keepdim=True) + 1e-6))
            self.initialize_next = False
        logdet = x.shape[2] * x.shape[3] * self.log_scale.sum()
        return (x + self.loc) * self.log_scale.exp(), _per_example(logdet, x)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * (-self.log_scale).exp() - self.loc


class InvConv1x1(nn.Module):
    """1x1 convolution with W = P L (U + diag(sign * exp(log_s))), started at a random
    rotation; P and the signs are fixed, L is unit lower and U strictly upper triangular."""

    def __init__(self, channels: int):
        super().__init__()
        rotation = torch.linalg.qr(torch.randn(channels, channels))[0]
        p, lower, upper = torch.linalg.lu(rotation)
        s = upper.diagonal()
        self.register_buffer("p", p)
        self.register_buffer("sign", s.sign())
        self.register_buffer("lower_mask", torch.ones(channels, channels).tril(-1), False)
        self.register_buffer("eye", torch.eye(channels), False)
        self.lower = nn.Parameter(lower * self.lower_mask)
        self.upper = nn.Parameter(upper.triu(1))
        self.log_s = nn.Parameter(s.abs().log())

    def weight(self) -> torch.Tensor:
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign * self.log_s.exp())
        return self.p @ lower @ upper

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = x.shape[2] * x.shape[3] * self.log_s.sum()
        return F.conv2d(x, self.weight()[:, :, None, None]), _per_example(logdet, x)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return F.conv2d(y, torch.linalg.inv(self.weight())[:, :, None, None])


class ZeroConv(nn.Module):
    """3x3 convolution started at zero, its output scaled by exp(3 * logs) per channel
    (openai/glow's conv2d_zeros): layers that end at it start as the identity."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.logs = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * (3 * self.logs).exp()


class AffineCoupling(nn.Module):
    """x = (x_a, x_b) -> (x_a, (x_b + t) * sigmoid(h + 2)), with t, h from f(x_a)."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        half = channels // 2
        self.f = nn.Sequential(
            nn.Conv2d(half, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 1),
            nn.ReLU(),
            ZeroConv(width, 2 * (channels - half)),
        )

    def _shift_scale(self, x_a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.f(x_a)
        return h[:, 0::2], torch.sigmoid(h[:, 1::2] + 2.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_a, x_b = x.chunk(2, dim=1)
        shift, scale = self._shift_scale(x_a)
        y_b = (x_b + shift) * scale
        return torch.cat([x_a, y_b], dim=1), scale.log().flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y_a, y_b = y.chunk(2, dim=1)
        shift, scale = self._shift_scale(y_a)
        return torch.cat([y_a, y_b / scale - shift], dim=1)


class Step(nn.Module):
    """One flow step: actnorm, invertible 1x1 convolution, affine coupling."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.layers = nn.ModuleList(
            [ActNorm(channels), InvConv1x1(channels), AffineCoupling(channels, width)]
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = torch.zeros(len(x), device=x.device, dtype=x.dtype)
        for layer in self.layers:
            x, ld = layer(x)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y


def _mean_logs(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return h[:, 0::2], h[:, 1::2]


class Glow(nn.Module):
    """x -> standardized latents eps (one per level) and log|det d eps / dx| per example."""

    def __init__(self, shape: tuple[int, int, int], levels: int, depth: int, width: int):
        super().__init__()
        C, H, W = shape
        self.levels, self.priors = nn.ModuleList(), nn.ModuleList()
        self.z_shapes: list[tuple[int, int, int]] = []
        for level in range(levels):
            C, H, W = 4 * C, H // 2, W // 2
            self.levels.append(nn.ModuleList(Step(C, width) for _ in range(depth)))
            if level == levels - 1:
                self.z_shapes.append((C, H, W))
                break
            self.priors.append(ZeroConv(C - C // 2, 2 * (C // 2)))  # split2d_prior
            self.z_shapes.append((C // 2, H, W))
            C -= C // 2
        self.top = nn.Parameter(torch.zeros(1, 2 * C, 1, 1))  # learned top prior

    def initialize_actnorms(self) -> None:
        """The next forward sets every actnorm from the activations it sees."""
        for m in self.modules():
            if isinstance(m, ActNorm):
                m.initialize_next = True

    def _prior(self, level: int, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if level < len(self.priors):
            return _mean_logs(self.priors[level](kept))
        return _mean_logs(self.top.expand(len(kept), -1, *kept.shape[2:]))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        eps, logdet = [], torch.zeros(len(x), device=x.device, dtype=x.dtype)
        for level, steps in enumerate(self.levels):
            x = F.pixel_unshuffle(x, 2)
            for step in steps:
                x, ld = step(x)
                logdet = logdet + ld
            if level < len(self.priors):
                z, x = x[:, : self.z_shapes[level][0]], x[:, self.z_shapes[level][0] :]
            else:
                z = x
            mean, logs = self._prior(level, x)
            eps.append((z - mean) * (-logs).exp())
            logdet = logdet - logs.flatten(1).sum(1)
        return eps, logdet

    def inverse(self, eps: list[torch.Tensor], temperature: float = 1.0) -> torch.Tensor:
        """eps -> x; temperature T scales every eps (sampling from the prior at T)."""
        x = None
        for level in reversed(range(len(self.levels))):
            kept = x if x is not None else eps[level]
            mean, logs = self._prior(level, kept)
            z = mean + logs.exp() * temperature * eps[level]
            x = torch.cat([z, x], dim=1) if x is not None else z
            for step in reversed(self.levels[level]):
                x = step.inverse(x)
            x = F.pixel_shuffle(x, 2)
        return x


def _default_levels(h: int, w: int) -> int:
    levels = 2 if max(h, w) <= 8 else 3
    while levels > 1 and (h % 2**levels or w % 2**levels):
        levels -= 1
    return levels


def check_temperature(temperature: object) -> float:
    """The `temperature` option: a finite number > 0."""
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
        or temperature <= 0
    ):
        raise UserError(
            f"glow: temperature must be a number > 0 (1 samples the trained model, below 1 "
            f"trades diversity for quality), not {temperature!r}"
        )
    return float(temperature)


@register_model("glow")
class GlowModel:
    """Glow with actnorm, LU-decomposed 1x1 convolutions and affine couplings.

    Options: levels=None (auto: 2 up to 8 px, else 3, fewer when H, W are not divisible),
    depth=None (steps per level; auto: 4 up to 8 px, else 16), width=None (the coupling
    networks' channels; auto: 128 up to 8 px, else 256), batch_size=64, lr=1e-3,
    weight_decay=5e-5, grad_clip=100, temperature=1.0 (sampling only: the prior's std is
    multiplied by it), device=None (cuda if available).
    """

    nfe = 1  # one network evaluation per sample
    # Options that change sampling or evaluation only: one trained model serves them all.
    SAMPLE_OPTIONS = ("temperature",)
    SWEEP_OPTIONS = {"temperature": "T"}  # the report's sweeps: rows that differ in T alone

    def __init__(
        self,
        shape: tuple[int, ...],
        kind: str = "images",
        *,
        levels: int | None = None,
        depth: int | None = None,
        width: int | None = None,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 5e-5,
        grad_clip: float = 100.0,
        temperature: float = 1.0,
        device: str | None = None,
    ):
        if kind != "images":
            raise UserError("glow models images only; use another family for points")
        C, H, W = shape
        levels = levels or _default_levels(H, W)
        if H % 2**levels or W % 2**levels:
            raise UserError(
                f"glow: {H}x{W} images cannot be squeezed {levels} times (2x2 pixels each); "
                "use fewer levels"
            )
        self.shape, self.kind = tuple(shape), kind
        self.device = resolve_device(device)
        self.batch_size, self.lr, self.weight_decay = batch_size, lr, weight_decay
        self.grad_clip = grad_clip
        self.temperature = check_temperature(temperature)
        depth = depth or (4 if max(H, W) <= 8 else 16)
        width = width or (128 if max(H, W) <= 8 else 256)
        self.config = {"levels": levels, "depth": depth, "width": width}
        self.redrawn = 0  # prior draws redrawn by sample() because their inverse overflowed
        self._build(seed=0)

    @property
    def sample_options(self) -> dict:
        return {"temperature": self.temperature}

    def _build(self, seed: int) -> None:
        c = self.config
        with seeded(seed):
            self.flow = Glow(self.shape, c["levels"], c["depth"], c["width"])
        self.flow.to(self.device)

    def _nll(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """-log p of the dequantized pixels x + u on [0, 256)^D, in nats per image."""
        y = (x.to(self.device).float() + u) / 256.0
        p = ALPHA + (1 - 2 * ALPHA) * y
        z0 = torch.log(p) - torch.log1p(-p)
        logdet_pre = (math.log(1 - 2 * ALPHA) - torch.log(p) - torch.log1p(-p)).flatten(1).sum(1)
        logdet_pre = logdet_pre - math.prod(self.shape) * math.log(256.0)
        eps, logdet = self.flow(z0)
        log_prior = sum((-0.5 * e**2 - 0.5 * LOG_2PI).flatten(1).sum(1) for e in eps)
        return -(log_prior + logdet + logdet_pre)

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        self._build(seed)
        opt = torch.optim.Adam(self.flow.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        gen = device_generator(seed, self.device)
        stream = batches(data.train.x, self.batch_size, seed)
        per_bit = math.prod(self.shape) * math.log(2)
        self.flow.train()
        first = True

        def step() -> dict[str, float]:
            nonlocal first
            x = next(stream).to(self.device)
            u = torch.rand(x.shape, generator=gen, device=self.device)
            if first:  # data-dependent actnorm initialization on the first batch
                self.flow.initialize_actnorms()
                first = False
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
        """n images; a prior draw far in the tails can overflow float32 in the inverse (the
        couplings' 1 / sigmoid(h + 2) expansions compound, h growing with the input), so a
        draw whose image is not finite is redrawn from the generator, up to REDRAWS rounds
        (counted in `redrawn`); what is still not finite is refused as a diverged model."""
        self.flow.eval()
        out = []
        for start in range(0, n, batch_size):
            y = self._decode(min(batch_size, n - start), generator)
            for _ in range(REDRAWS):
                overflowed = ~torch.isfinite(y.flatten(1)).all(1)
                if not overflowed.any():
                    break
                self.redrawn += int(overflowed.sum())
                y[overflowed] = self._decode(int(overflowed.sum()), generator)
            require_finite(y)
            out.append((y * 256).floor().clamp(0, 255).to(torch.uint8).cpu())
        return torch.cat(out)

    def _decode(self, m: int, generator: torch.Generator) -> torch.Tensor:
        """m images in [0, 1] from m prior draws at the temperature."""
        eps = [randn((m, *s), generator, self.device) for s in self.flow.z_shapes]
        p = torch.sigmoid(self.flow.inverse(eps, self.temperature))
        return ((p - ALPHA) / (1 - 2 * ALPHA)).clamp(0, 1)

    # Copied from baselines.realnvp.RealNVP.log_prob
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

    # Copied from baselines.realnvp.RealNVP.bits_per_dim
    def bits_per_dim(
        self, x: torch.Tensor, *, batch_size: int = 256, generator: torch.Generator | None = None
    ) -> float:
        """Mean NLL over x (uint8 NCHW) in bits per dimension (uniform dequantization)."""
        nats = -self.log_prob(x, batch_size=batch_size, generator=generator)
        return float(nats.mean() / (math.prod(self.shape) * math.log(2)))

    def state_dict(self) -> dict:
        return checkpoint(self.config, {"flow": self.flow})

    def load_state_dict(self, sd: dict) -> None:
        load_checkpoint(sd, self.config, "glow", {"flow": self.flow})
