"""DDPM (Ho et al. 2020): a small UNet trained to predict the noise added to an image.

Forward process: q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) for t = 1..T, with a
linear (Ho et al.) or cosine (Nichol & Dhariwal 2021) schedule of betas; T = 1000 by
default. Training minimizes ||eps - eps_theta(x_t, t)||^2 (the "simple" loss).

Sampling runs on a subsequence of `steps` timesteps: `ddim` (Song et al. 2021; eta=0 is
deterministic given the initial noise) or `ancestral` (the DDPM posterior
q(x_{t-1} | x_t, x0_hat) with variance beta~_t, respaced when steps < T). One network
evaluation per step, so nfe == steps. Samples use the EMA of the weights.

`bits_per_dim(x)`: the variational bound L_T + sum_t L_{t-1} + L_0 of Ho et al. on pixels
scaled to [-1, 1]; reverse-process variances sigma_t^2 = beta~_t (posterior variance) for
t >= 2, and L_0 the discretized Gaussian decoder N(x0_hat, beta_1) over the 256 pixel bins
(edge bins extend to infinity), so it is an upper bound on the NLL of the 8-bit pixels. The
sum over t is estimated without bias from `bpd_timesteps` stratified random timesteps (one
per stratum of {2..T}, weighted by the stratum's size) with one noise draw each.

Point datasets use an MLP on standardized coordinates instead of the UNet.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from baselines.layers import (
    PointScaler,
    SinusoidalEmbedding,
    batches,
    checkpoint,
    device_generator,
    load_checkpoint,
    pad_to,
    padded_size,
    randn,
    resolve_device,
    seeded,
    to_signed,
    to_uint8,
    train_loop,
)
from bench.data import ImageDataset
from bench.errors import UserError
from bench.models import Budget, Progress, Spent, register_model

# ---------------------------------------------------------------------------- networks

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""eps_theta(x_t, t) as the samplers call it: the EMA network, or cddpm's guided mix."""


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(8, cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2 = nn.GroupNorm(min(8, cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class UNet(nn.Module):
    """eps_theta(x_t, t): `blocks` residual blocks per resolution, stride-2 downsampling
    between resolutions, skip connections across; inputs are zero-padded to a multiple of
    2**(levels-1) (28 -> 32 with four levels) and the output cropped back."""

    def __init__(self, channels: int, width: int, mult: tuple[int, ...], blocks: int):
        super().__init__()
        self.emb_dim = emb_dim = 4 * width
        self.factor = 2 ** (len(mult) - 1)
        self.embed = nn.Sequential(
            SinusoidalEmbedding(width),
            nn.Linear(width, emb_dim),
            nn.SiLU(),
            nn.Linear(emb_dim, emb_dim),
        )
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        self.down = nn.ModuleList()
        skip_ch, ch = [width], width
        for level, m in enumerate(mult):
            for _ in range(blocks):
                self.down.append(ResBlock(ch, width * m, emb_dim))
                ch = width * m
                skip_ch.append(ch)
            if level < len(mult) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skip_ch.append(ch)
        self.mid = nn.ModuleList([ResBlock(ch, ch, emb_dim), ResBlock(ch, ch, emb_dim)])
        self.up = nn.ModuleList()
        for level, m in reversed(list(enumerate(mult))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(ch + skip_ch.pop(), width * m, emb_dim))
                ch = width * m
            if level > 0:
                self.up.append(
                    nn.Sequential(
                        nn.Upsample(scale_factor=2.0, mode="nearest"),
                        nn.Conv2d(ch, ch, 3, padding=1),
                    )
                )
        self.out = nn.Sequential(
            nn.GroupNorm(min(8, ch), ch), nn.SiLU(), nn.Conv2d(ch, channels, 3, padding=1)
        )
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, extra: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`extra` (optional, (N, 4 * width)) is added to the time embedding: cddpm's class."""
        H, W = x.shape[-2:]
        h = pad_to(x, padded_size(H, self.factor), padded_size(W, self.factor))
        emb = self.embed(t)
        if extra is not None:
            emb = emb + extra
        h = self.stem(h)
        skips = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
            skips.append(h)
        for layer in self.mid:
            h = layer(h, emb)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, skips.pop()], dim=1), emb)
            else:
                h = layer(h)
        h = self.out(h)
        top, left = (h.shape[-2] - H) // 2, (h.shape[-1] - W) // 2
        return h[..., top : top + H, left : left + W]


class PointNet(nn.Module):
    """eps_theta for 2-D points: an MLP on (x_t, embedding of t)."""

    def __init__(self, dim: int, hidden: int, depth: int):
        super().__init__()
        self.embed = SinusoidalEmbedding(32)
        layers: list[nn.Module] = [nn.Linear(dim + 32, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, self.embed(t)], dim=1))


# ---------------------------------------------------------------------------- schedule


def make_betas(schedule: str, T: int) -> torch.Tensor:
    """float64 betas for t = 1..T (index 0..T-1)."""
    if schedule == "linear":
        scale = 1000.0 / T  # keeps the linear schedule's endpoints meaningful for T != 1000
        return torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64)
    if schedule == "cosine":
        s = 0.008
        steps = torch.arange(T + 1, dtype=torch.float64) / T
        abar = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    raise UserError(f"ddpm: schedule must be 'linear' or 'cosine', not {schedule!r}")


def _default_mult(size: int) -> tuple[int, ...]:
    if size <= 8:
        return (1, 2)
    if size <= 16:
        return (1, 2, 2)
    return (1, 2, 2, 2)


def _normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


# ---------------------------------------------------------------------------- model


@register_model("ddpm")
class DDPM:
    """Noise-prediction DDPM with a small UNet (MLP for point datasets).

    Options (defaults tuned for 8x8 digits on a CPU): T=1000, schedule="linear"|"cosine",
    width=None (channels at full resolution; auto: 16 up to 8 px, else 64),
    channel_mult=None (auto: (1,2) up to 8 px, (1,2,2) up to 16, else (1,2,2,2)),
    blocks=1 per resolution, hidden=256 and depth=4 for points, point_std=3.0 (points are
    scaled to this std: a larger data scale against the fixed noise schedule leaves more
    sampling steps at noise levels that separate nearby modes), batch_size=None (64; points:
    256), lr=1e-3, ema=0.995, grad_clip=1.0; sampler="ddim"|"ancestral", steps=None (ddim:
    50, ancestral: T), eta=0.0 (ddim only), bpd_timesteps=100, device=None (cuda if available).
    """

    # Options that change sampling or evaluation only: one trained model serves them all.
    SAMPLE_OPTIONS = ("sampler", "steps", "eta", "bpd_timesteps")

    def __init__(
        self,
        shape: tuple[int, ...],
        kind: str = "images",
        *,
        T: int = 1000,
        schedule: str = "linear",
        width: int | None = None,
        channel_mult: list[int] | None = None,
        blocks: int = 1,
        hidden: int = 256,
        depth: int = 4,
        point_std: float = 3.0,
        batch_size: int | None = None,
        lr: float = 1e-3,
        ema: float = 0.995,
        grad_clip: float = 1.0,
        sampler: str = "ddim",
        steps: int | None = None,
        eta: float = 0.0,
        bpd_timesteps: int = 100,
        device: str | None = None,
    ):
        self.shape, self.kind = tuple(shape), kind
        self.device = resolve_device(device)
        if sampler not in ("ddim", "ancestral"):
            raise UserError(f"ddpm: sampler must be 'ddim' or 'ancestral', not {sampler!r}")
        self.sampler, self.eta = sampler, float(eta)
        self.steps = int(steps) if steps is not None else (50 if sampler == "ddim" else T)
        if not 1 <= self.steps <= T:
            raise UserError(f"ddpm: steps must be between 1 and T={T}, not {self.steps}")
        self.batch_size = batch_size or (256 if kind == "points" else 64)
        self.lr, self.ema_decay = lr, ema
        self.grad_clip, self.bpd_timesteps = grad_clip, bpd_timesteps
        size = max(self.shape[1:], default=0)
        width = width or (16 if size <= 8 else 64)
        mult = tuple(channel_mult) if channel_mult else _default_mult(size)
        self.config = {
            "T": T,
            "schedule": schedule,
            "width": width,
            "channel_mult": list(mult),
            "blocks": blocks,
            "hidden": hidden,
            "depth": depth,
        }
        betas = make_betas(schedule, T)
        self.T = T
        self.betas = betas.float().to(self.device)
        self.abar = torch.cumprod(1 - betas, 0).float().to(self.device)
        self.scaler = PointScaler(shape[0], point_std).to(self.device) if kind == "points" else None
        self._build(seed=0)

    def _build(self, seed: int) -> None:
        c = self.config
        with seeded(seed):
            if self.kind == "points":
                self.net = PointNet(self.shape[0], c["hidden"], c["depth"])
            else:
                self.net = UNet(self.shape[0], c["width"], tuple(c["channel_mult"]), c["blocks"])
        self.net.to(self.device)
        self.ema = copy.deepcopy(self.net).requires_grad_(False)  # what sampling uses

    # -------------------------------------------------------------------- training

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        return self.scaler(x) if self.scaler is not None else to_signed(x)

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        self._build(seed)
        if self.scaler is not None:
            self.scaler.fit(data.train.x.to(self.device))
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        gen = device_generator(seed, self.device)
        stream = batches(data.train.x, self.batch_size, seed)
        self.net.train()
        done = 0

        def step() -> dict[str, float]:
            nonlocal done
            x0 = self._prepare(next(stream))
            t = torch.randint(0, self.T, (len(x0),), generator=gen, device=self.device)
            eps = torch.randn(x0.shape, generator=gen, device=self.device)
            ab = self.abar[t].view(-1, *[1] * (x0.dim() - 1))
            xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
            loss = F.mse_loss(self.net(xt, t), eps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
            opt.step()
            # EMA with a warm-up, so that short budgets do not sample from the initial weights
            done += 1
            decay = min(self.ema_decay, (1 + done) / (10 + done))
            with torch.no_grad():
                for e, p in zip(self.ema.parameters(), self.net.parameters(), strict=True):
                    e.lerp_(p.detach(), 1 - decay)
            return {"loss": loss.item()}

        spent = train_loop(step, budget, progress)
        self.net.eval()
        return spent

    # -------------------------------------------------------------------- sampling

    @property
    def nfe(self) -> int:
        return self.steps

    @property
    def sample_options(self) -> dict:
        opts = {"sampler": self.sampler, "steps": self.steps}
        if self.sampler == "ddim":
            opts["eta"] = self.eta
        return opts

    def _timesteps(self) -> list[int]:
        ts = torch.linspace(self.T - 1, 0, self.steps).round().long().tolist()
        return sorted(set(ts), reverse=True)

    @torch.inference_mode()
    def sample(self, n: int, *, generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
        net = self.ema.eval()
        out = []
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            out.append(self._sample_batch(net, m, generator))
        x = torch.cat(out)
        if self.scaler is not None:
            return self.scaler.inverse(x).float().cpu()
        return to_uint8(x)

    def _sample_batch(self, net: EpsModel, m: int, generator: torch.Generator) -> torch.Tensor:
        x = randn((m, *self.shape), generator, self.device)
        ts = self._timesteps()
        for i, t in enumerate(ts):
            ab = self.abar[t]
            ab_prev = self.abar[ts[i + 1]] if i + 1 < len(ts) else torch.ones_like(ab)
            eps = net(x, torch.full((m,), t, device=self.device))
            x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
            if self.kind == "images":
                x0 = x0.clamp(-1, 1)
                eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
            if i + 1 == len(ts):
                return x0
            if self.sampler == "ancestral":
                beta = 1 - ab / ab_prev
                mean = ab_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - ab_prev) * x
                mean = mean / (1 - ab)
                sigma = (beta * (1 - ab_prev) / (1 - ab)).sqrt()
                x = mean + sigma * randn(x.shape, generator, self.device)
            else:
                sigma = self.eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt()
                x = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).sqrt() * eps
                if self.eta > 0:
                    x = x + sigma * randn(x.shape, generator, self.device)
        return x

    # -------------------------------------------------------------------- likelihood

    @torch.inference_mode()
    def log_prob(
        self, x: torch.Tensor, *, batch_size: int = 256, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A lower bound on log p(x) in nats per image: minus the bound in the module doc."""
        if self.kind != "images":
            raise UserError("ddpm: the likelihood bound is defined for image datasets only")
        generator = generator or torch.Generator().manual_seed(0)
        net = self.ema.eval()
        return torch.cat(
            [
                -self._nll_bound(net, x[i : i + batch_size], generator)
                for i in range(0, len(x), batch_size)
            ]
        )

    def bits_per_dim(
        self, x: torch.Tensor, *, batch_size: int = 256, generator: torch.Generator | None = None
    ) -> float:
        """Mean negative bound over x (uint8 NCHW), in bits per dimension."""
        nats = -self.log_prob(x, batch_size=batch_size, generator=generator)
        return float(nats.mean() / (math.prod(self.shape) * math.log(2)))

    def _nll_bound(self, net: nn.Module, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        x0 = to_signed(x.to(self.device)).double()
        m, T = len(x0), self.T
        betas, abar = self.betas.double(), self.abar.double()
        alphas = 1 - betas

        def q_sample(t: int) -> tuple[torch.Tensor, torch.Tensor]:
            xt = abar[t].sqrt() * x0 + (1 - abar[t]).sqrt() * randn(x0.shape, gen, self.device)
            eps = net(xt.float(), torch.full((m,), t, device=self.device)).double()
            mean = (xt - betas[t] / (1 - abar[t]).sqrt() * eps) / alphas[t].sqrt()
            return xt, mean

        # L_T: KL(q(x_T | x_0) || N(0, I)).
        mu, var = abar[-1].sqrt() * x0, 1 - abar[-1]
        total = 0.5 * (var + mu**2 - 1 - var.log()).flatten(1).sum(1)
        # L_{t-1}, t = 2..T (index 1..T-1): stratified random timesteps, weighted by stratum.
        edges = torch.linspace(1, T, min(self.bpd_timesteps, T - 1) + 1).round().long().tolist()
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            t = lo + int(torch.randint(hi - lo, (1,), generator=gen))
            xt, mean = q_sample(t)
            post_var = betas[t] * (1 - abar[t - 1]) / (1 - abar[t])
            post_mean = (
                abar[t - 1].sqrt() * betas[t] * x0 + alphas[t].sqrt() * (1 - abar[t - 1]) * xt
            ) / (1 - abar[t])
            kl = ((post_mean - mean) ** 2).flatten(1).sum(1) / (2 * post_var)
            total = total + (hi - lo) * kl
        # L_0: discretized Gaussian decoder over the pixel bins of width 2/255.
        _, mean = q_sample(0)
        std = betas[0].sqrt()
        upper = torch.where(x0 > 0.999, torch.inf, x0 + 1 / 255)
        lower = torch.where(x0 < -0.999, -torch.inf, x0 - 1 / 255)
        prob = _normal_cdf((upper - mean) / std) - _normal_cdf((lower - mean) / std)
        total = total - prob.clamp_min(1e-12).log().flatten(1).sum(1)
        return total.float().cpu()

    # -------------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict:
        return checkpoint(self.config, self._checkpointed())

    def load_state_dict(self, sd: dict) -> None:
        load_checkpoint(sd, self.config, "ddpm", self._checkpointed())

    def _checkpointed(self) -> dict:
        return {"net": self.net, "ema": self.ema, "scaler": self.scaler}
