"""Class-conditional DDPM with classifier-free guidance (Ho & Salimans 2022).

The noise model is ddpm.py's UNet with a learned class embedding added to its time
embedding. The embedding table has num_classes + 1 rows: the last is the null class
(no label). During training each label is replaced by the null class with probability
`p_uncond` (0.1), so one network learns both eps(x_t, y) and the unconditional eps(x_t, null).

Sampling mixes the two with guidance scale w: eps = (1 + w) eps(x_t, y) - w eps(x_t, null)
(Ho & Salimans' convention: w = 0 is the plain conditional model; larger w trades diversity
for samples that look more like their class). Both terms run in one batched network call, so
nfe is 2 * steps when w != 0 and steps when w = 0. Forward process, loss, EMA and the DDIM /
ancestral samplers are those of ddpm.py. `guidance`, `steps`, `sampler` and `eta` are
sampling options: a suite sweeps them on one trained model.

Images only. No likelihood: the bits_per_dim metric asks for p(x), and this model is trained
for p(x | y).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from baselines.ddpm import EpsModel, UNet, _default_mult, make_betas
from baselines.layers import (
    check_conditional,
    checkpoint,
    device_generator,
    labelled_batches,
    load_checkpoint,
    randn,
    resolve_device,
    sample_labels,
    seeded,
    to_signed,
    to_uint8,
    train_loop,
    training_labels,
)
from bench.data import ImageDataset
from bench.errors import UserError
from bench.models import Budget, Progress, Spent, register_model


class ConditionalUNet(nn.Module):
    """eps_theta(x_t, t, y): the UNet with embed(y) added to the time embedding; label
    num_classes is the null class."""

    def __init__(self, channels: int, width: int, mult: tuple[int, ...], blocks: int, K: int):
        super().__init__()
        self.unet = UNet(channels, width, mult, blocks)
        self.label_embed = nn.Embedding(K + 1, self.unet.emb_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t, self.label_embed(y))


def drop_labels(
    y: torch.Tensor, p_uncond: float, null_class: int, generator: torch.Generator
) -> torch.Tensor:
    """Each label replaced by the null class independently with probability p_uncond."""
    drop = torch.rand(y.shape, generator=generator, device=y.device) < p_uncond
    return torch.where(drop, torch.full_like(y, null_class), y)


@register_model("cddpm")
class CDDPM:
    """Class-conditional DDPM with classifier-free guidance (images only).

    Options (defaults tuned for 8x8 digits on a CPU): num_classes (given by the harness),
    T=1000, schedule="linear"|"cosine", width=None (auto: 16 up to 8 px, else 64),
    channel_mult=None (auto as ddpm), blocks=1, batch_size=64, lr=1e-3, ema=0.995,
    grad_clip=1.0, p_uncond=0.1 (label dropout); sampler="ddim"|"ancestral", steps=None
    (ddim: 50, ancestral: T), eta=0.0 (ddim only), guidance=1.0 (w), device=None.
    """

    # Options that change sampling only: one trained model serves them all.
    SAMPLE_OPTIONS = ("sampler", "steps", "eta", "guidance")
    SWEEP_OPTIONS = {"guidance": "w"}  # the report's sweeps: rows that differ in w alone

    def __init__(
        self,
        shape: tuple[int, ...],
        kind: str = "images",
        *,
        num_classes: int,
        T: int = 1000,
        schedule: str = "linear",
        width: int | None = None,
        channel_mult: list[int] | None = None,
        blocks: int = 1,
        batch_size: int = 64,
        lr: float = 1e-3,
        ema: float = 0.995,
        grad_clip: float = 1.0,
        p_uncond: float = 0.1,
        sampler: str = "ddim",
        steps: int | None = None,
        eta: float = 0.0,
        guidance: float = 1.0,
        device: str | None = None,
    ):
        self.shape, self.kind = tuple(shape), kind
        self.num_classes = check_conditional("cddpm", kind, num_classes)
        self.device = resolve_device(device)
        if sampler not in ("ddim", "ancestral"):
            raise UserError(f"cddpm: sampler must be 'ddim' or 'ancestral', not {sampler!r}")
        self.sampler, self.eta = sampler, float(eta)
        self.steps = int(steps) if steps is not None else (50 if sampler == "ddim" else T)
        if not 1 <= self.steps <= T:
            raise UserError(f"cddpm: steps must be between 1 and T={T}, not {self.steps}")
        if not 0.0 <= p_uncond < 1.0:
            raise UserError(f"cddpm: p_uncond must be in [0, 1), not {p_uncond}")
        if guidance < 0:
            raise UserError(f"cddpm: guidance must be >= 0 (0: no guidance), not {guidance}")
        if p_uncond == 0 and guidance != 0:
            raise UserError("cddpm: guidance needs p_uncond > 0 (the null class is never trained)")
        self.p_uncond, self.guidance = float(p_uncond), float(guidance)
        self.batch_size, self.lr, self.ema_decay, self.grad_clip = batch_size, lr, ema, grad_clip
        size = max(self.shape[1:])
        width = width or (16 if size <= 8 else 64)
        mult = tuple(channel_mult) if channel_mult else _default_mult(size)
        self.config = {
            "T": T,
            "schedule": schedule,
            "width": width,
            "channel_mult": list(mult),
            "blocks": blocks,
            "num_classes": self.num_classes,
        }
        betas = make_betas(schedule, T)
        self.T = T
        self.betas = betas.float().to(self.device)
        self.abar = torch.cumprod(1 - betas, 0).float().to(self.device)
        self._build(seed=0)

    def _build(self, seed: int) -> None:
        c = self.config
        with seeded(seed):
            self.net = ConditionalUNet(
                self.shape[0], c["width"], tuple(c["channel_mult"]), c["blocks"], self.num_classes
            )
        self.net.to(self.device)
        self.ema = copy.deepcopy(self.net).requires_grad_(False)  # what sampling uses

    # -------------------------------------------------------------------- training

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        labels = training_labels("cddpm", data, self.num_classes)
        self._build(seed)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        gen = device_generator(seed, self.device)
        stream = labelled_batches(data.train.x, labels, self.batch_size, seed)
        self.net.train()
        done = 0

        def step() -> dict[str, float]:
            nonlocal done
            x, y = next(stream)
            x0, y = to_signed(x.to(self.device)), y.to(self.device)
            y = drop_labels(y, self.p_uncond, self.num_classes, gen)
            t = torch.randint(0, self.T, (len(x0),), generator=gen, device=self.device)
            eps = torch.randn(x0.shape, generator=gen, device=self.device)
            ab = self.abar[t].view(-1, 1, 1, 1)
            xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
            loss = F.mse_loss(self.net(xt, t, y), eps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
            opt.step()
            # EMA with a warm-up, as in ddpm.py
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
        return self.steps * (2 if self.guidance != 0 else 1)

    @property
    def sample_options(self) -> dict:
        opts = {"sampler": self.sampler, "steps": self.steps, "guidance": self.guidance}
        if self.sampler == "ddim":
            opts["eta"] = self.eta
        return opts

    def guided_eps(self, net: ConditionalUNet, y: torch.Tensor) -> EpsModel:
        """eps(x_t, t) = (1 + w) eps(x_t, t, y) - w eps(x_t, t, null); w = 0: eps(x_t, t, y)."""
        w = self.guidance
        if w == 0:
            return lambda x, t: net(x, t, y)
        null = torch.full_like(y, self.num_classes)

        def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            both = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]))
            cond, uncond = both.chunk(2)
            return (1 + w) * cond - w * uncond

        return eps

    @torch.inference_mode()
    def sample(
        self, n: int, *, labels: torch.Tensor, generator: torch.Generator, batch_size: int = 256
    ) -> torch.Tensor:
        labels = sample_labels("cddpm", labels, n, self.num_classes).to(self.device)
        net = self.ema.eval()
        out = []
        for start in range(0, n, batch_size):
            y = labels[start : start + batch_size]
            out.append(self._sample_batch(self.guided_eps(net, y), len(y), generator))
        return to_uint8(torch.cat(out))

    # Copied from baselines.ddpm.DDPM._timesteps
    def _timesteps(self) -> list[int]:
        ts = torch.linspace(self.T - 1, 0, self.steps).round().long().tolist()
        return sorted(set(ts), reverse=True)

    # Copied from baselines.ddpm.DDPM._sample_batch
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

    # -------------------------------------------------------------------- checkpoints

    # Copied from baselines.ddpm.DDPM.state_dict
    def state_dict(self) -> dict:
        return checkpoint(self.config, self._checkpointed())

    # Copied from baselines.ddpm.DDPM.load_state_dict with ddpm->cddpm
    def load_state_dict(self, sd: dict) -> None:
        load_checkpoint(sd, self.config, "cddpm", self._checkpointed())

    def _checkpointed(self) -> dict:
        return {"net": self.net, "ema": self.ema}
