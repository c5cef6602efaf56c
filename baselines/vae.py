"""Convolutional VAE (Kingma & Welling 2014): Gaussian encoder, reparameterized latent,
analytic KL to N(0, I), and a discretized logistic decoder over the 256 pixel values.

Likelihood: each pixel is an independent discretized logistic (PixelCNN++ style, one
component) with a mean and log-scale per pixel from the decoder, over pixels scaled to
[-1, 1] in 256 bins (edge bins extend to infinity). It is a proper distribution over 8-bit
images, so `bits_per_dim(x)` = -ELBO / (D ln 2) is an upper bound on the model's NLL of
the discrete pixels; no dequantization is needed. The ELBO is estimated with `elbo_samples`
latent draws per image (default 1). Training minimizes the same -ELBO.

beta-VAE (Higgins et al. 2017): option `beta` weighs the KL term of the training loss
(rec - beta KL; beta=1, the default, is the plain VAE, the same arithmetic bit for bit);
bits per dimension stays the true (beta=1) ELBO bound. `encode(x)` returns the posterior
means, the codes that disentanglement metrics (mig, dci) read.

`sample` decodes z ~ N(0, I) and returns the decoder mean by default (sample_mode="mean",
as VAEs are usually shown); sample_mode="sample" draws the pixels from the decoder.

Images are zero-padded (black) to the power of two >= their size (28 -> 32); the encoder
halves the resolution down to 4x4 with stride-2 convolutions and the decoder mirrors it.
Point datasets use MLPs with a Gaussian decoder on standardized coordinates.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from baselines.layers import (
    PointScaler,
    batches,
    checkpoint,
    crop_to,
    device_generator,
    load_checkpoint,
    mlp,
    pad_to,
    pow2_size,
    rand,
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


class ConvEncoder(nn.Module):
    def __init__(self, channels: int, size: int, width: int, z_dim: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.SiLU()]
        ch = width
        while size > 4:
            layers += [nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1), nn.SiLU()]
            ch, size = 2 * ch, size // 2
        self.conv = nn.Sequential(*layers)
        self.head = nn.Linear(ch * 16, 2 * z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.conv(x).flatten(1)).chunk(2, dim=1)
        return mu, logvar


class ConvDecoder(nn.Module):
    def __init__(self, channels: int, size: int, width: int, z_dim: int):
        super().__init__()
        n_up = int(math.log2(size // 4))
        self.ch = width * 2**n_up
        self.fc = nn.Linear(z_dim, self.ch * 16)
        layers: list[nn.Module] = []
        ch = self.ch
        for _ in range(n_up):
            layers += [nn.SiLU(), nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1)]
            ch //= 2
        layers += [nn.SiLU(), nn.Conv2d(ch, 2 * channels, 3, padding=1)]
        self.conv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(z).view(len(z), self.ch, 4, 4)
        mean, log_scale = self.conv(h).chunk(2, dim=1)
        return mean, log_scale.clamp(min=-7.0)


def discretized_logistic_log_prob(
    x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor
) -> torch.Tensor:
    """log P(x) per pixel for x in [-1, 1] on the 256-value grid (PixelCNN++, eq. 2)."""
    centered = x - mean
    inv_scale = torch.exp(-log_scale)
    plus = inv_scale * (centered + 1 / 255)
    minus = inv_scale * (centered - 1 / 255)
    log_cdf_plus = plus - F.softplus(plus)  # log sigmoid(plus): the bin of pixel 0
    log_one_minus_cdf_minus = -F.softplus(minus)  # the bin of pixel 255
    cdf_delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    mid = inv_scale * centered  # density times bin width when the bin probability underflows
    log_pdf_mid = mid - log_scale - 2 * F.softplus(mid) + math.log(2 / 255)
    inner = torch.where(cdf_delta > 1e-5, cdf_delta.clamp_min(1e-12).log(), log_pdf_mid)
    return torch.where(
        x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_minus, inner)
    )


@register_model("vae")
class VAE:
    """Convolutional VAE with a discretized logistic decoder (MLP VAE for point datasets).

    Options: z_dim=16 (points: 2), width=32 (channels of the first conv; doubled at each
    downsampling), hidden=128 and depth=2 (points), batch_size=None (64; points: 256), lr=1e-3,
    sample_mode="mean"|"sample", elbo_samples=1, beta=1.0 (the KL weight in training:
    beta-VAE), device=None (cuda if available).
    """

    nfe = 1  # one network evaluation per sample
    # Options that change sampling or evaluation only: one trained model serves them all.
    SAMPLE_OPTIONS = ("sample_mode", "elbo_samples")

    def __init__(
        self,
        shape: tuple[int, ...],
        kind: str = "images",
        *,
        z_dim: int | None = None,
        width: int = 32,
        hidden: int = 128,
        depth: int = 2,
        batch_size: int | None = None,
        lr: float = 1e-3,
        sample_mode: str = "mean",
        elbo_samples: int = 1,
        beta: float = 1.0,
        device: str | None = None,
    ):
        self.shape, self.kind = tuple(shape), kind
        self.device = resolve_device(device)
        if sample_mode not in ("mean", "sample"):
            raise UserError(f"vae: sample_mode must be 'mean' or 'sample', not {sample_mode!r}")
        if not beta > 0:
            raise UserError(f"vae: beta must be a positive number, not {beta!r}")
        self.sample_mode, self.elbo_samples, self.beta = sample_mode, elbo_samples, beta
        self.batch_size = batch_size or (256 if kind == "points" else 64)
        self.lr = lr
        z_dim = z_dim or (2 if kind == "points" else 16)
        self.config = {"z_dim": z_dim, "width": width, "hidden": hidden, "depth": depth}
        self.scaler = PointScaler(shape[0]).to(self.device) if kind == "points" else None
        self._build(seed=0)

    def _build(self, seed: int) -> None:
        c = self.config
        with seeded(seed):
            if self.kind == "points":
                dim = self.shape[0]
                self.encoder = mlp(dim, 2 * c["z_dim"], c["hidden"], c["depth"])
                self.decoder = mlp(c["z_dim"], 2 * dim, c["hidden"], c["depth"])
            else:
                size = pow2_size(max(self.shape[1:]))
                self.encoder = ConvEncoder(self.shape[0], size, c["width"], c["z_dim"])
                self.decoder = ConvDecoder(self.shape[0], size, c["width"], c["z_dim"])
        self.encoder.to(self.device)
        self.decoder.to(self.device)

    def _modules(self) -> list[nn.Module]:
        return [self.encoder, self.decoder]

    # -------------------------------------------------------------------- networks

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "points":
            return self.encoder(x).chunk(2, dim=1)
        size = pow2_size(max(self.shape[1:]))
        return self.encoder(pad_to(x, size, size, value=-1.0))

    def _decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images: discretized logistic (mean, log_scale); points: Gaussian (mean, log_std)."""
        if self.kind == "points":
            mean, log_std = self.decoder(z).chunk(2, dim=1)
            return mean, log_std.clamp(min=-7.0)
        mean, log_scale = self.decoder(z)
        return crop_to(mean, *self.shape[1:]), crop_to(log_scale, *self.shape[1:])

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        return self.scaler(x) if self.scaler is not None else to_signed(x)

    def _elbo(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """ELBO in nats per example for prepared x, with the reparameterization noise given."""
        rec, kl = self._elbo_terms(x, noise)
        return rec - kl

    def _elbo_terms(
        self, x: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction log-likelihood, KL to the prior) in nats per example."""
        mu, logvar = self._encode(x)
        z = mu + (0.5 * logvar).exp() * noise
        mean, log_scale = self._decode(z)
        if self.kind == "points":
            dist = torch.distributions.Normal(mean, log_scale.exp())
            # the scaler's log-det makes this a density over the original coordinates
            rec = (dist.log_prob(x) - self.scaler.scale.log()).sum(1)
        else:
            rec = discretized_logistic_log_prob(x, mean, log_scale).flatten(1).sum(1)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        return rec, kl

    # -------------------------------------------------------------------- training

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        self._build(seed)
        if self.scaler is not None:
            self.scaler.fit(data.train.x.to(self.device))
        params = [p for m in self._modules() for p in m.parameters()]
        opt = torch.optim.Adam(params, lr=self.lr)
        gen = device_generator(seed, self.device)
        stream = batches(data.train.x, self.batch_size, seed)
        dims = math.prod(self.shape)
        for m in self._modules():
            m.train()

        def step() -> dict[str, float]:
            x = self._prepare(next(stream))
            noise = torch.randn((len(x), self.config["z_dim"]), generator=gen, device=self.device)
            rec, kl = self._elbo_terms(x, noise)
            # -ELBO in bits per dim (beta=1); 1.0 * kl is kl exactly, so the plain VAE is unchanged
            loss = -(rec - self.beta * kl).mean() / (dims * math.log(2))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return {"loss": loss.item()}

        spent = train_loop(step, budget, progress)
        for m in self._modules():
            m.eval()
        return spent

    # -------------------------------------------------------------------- sampling

    @torch.inference_mode()
    def sample(self, n: int, *, generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
        self.decoder.eval()
        out = []
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            mean, log_scale = self._decode(randn((m, self.config["z_dim"]), generator, self.device))
            if self.sample_mode == "sample":
                if self.kind == "points":
                    noise = randn(mean.shape, generator, self.device)
                else:  # a logistic draw; rounding to the pixel grid makes it discretized
                    u = rand(mean.shape, generator, self.device).clamp(1e-5, 1 - 1e-5)
                    noise = torch.log(u) - torch.log1p(-u)
                mean = mean + log_scale.exp() * noise
            out.append(mean)
        x = torch.cat(out)
        if self.scaler is not None:
            return self.scaler.inverse(x).float().cpu()
        return to_uint8(x.clamp(-1, 1))

    # -------------------------------------------------------------------- codes

    @torch.inference_mode()
    def encode(self, x: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
        """Posterior means (n, z_dim) of uint8 NCHW images (points: float32 (n, D))."""
        self.encoder.eval()
        out = [
            self._encode(self._prepare(x[i : i + batch_size]))[0].float().cpu()
            for i in range(0, len(x), batch_size)
        ]
        return torch.cat(out)

    @property
    def latent_dim(self) -> int:
        return self.config["z_dim"]

    @torch.inference_mode()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder means of latents z (n, z_dim): uint8 images (points: float32)."""
        self.decoder.eval()
        mean, _ = self._decode(z.to(self.device, torch.float32))
        if self.scaler is not None:
            return self.scaler.inverse(mean).float().cpu()
        return to_uint8(mean.clamp(-1, 1))

    # -------------------------------------------------------------------- likelihood

    @torch.inference_mode()
    def log_prob(
        self, x: torch.Tensor, *, batch_size: int = 256, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The ELBO (a lower bound on log p(x)) in nats per example, averaged over
        `elbo_samples` latent draws; for points it bounds the log density instead."""
        generator = generator or torch.Generator().manual_seed(0)
        for m in self._modules():
            m.eval()
        out = []
        for start in range(0, len(x), batch_size):
            xb = self._prepare(x[start : start + batch_size])
            elbo = torch.stack(
                [
                    self._elbo(xb, randn((len(xb), self.config["z_dim"]), generator, self.device))
                    for _ in range(self.elbo_samples)
                ]
            ).mean(0)
            out.append(elbo.cpu())
        return torch.cat(out)

    def bits_per_dim(
        self, x: torch.Tensor, *, batch_size: int = 256, generator: torch.Generator | None = None
    ) -> float:
        """Mean -ELBO over x (uint8 NCHW) in bits per dimension: an upper bound on the NLL."""
        if self.kind != "images":
            raise UserError("vae: bits per dimension is defined for image datasets only")
        nats = -self.log_prob(x, batch_size=batch_size, generator=generator)
        return float(nats.mean() / (math.prod(self.shape) * math.log(2)))

    # -------------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict:
        return checkpoint(self.config, self._checkpointed())

    def load_state_dict(self, sd: dict) -> None:
        load_checkpoint(sd, self.config, "vae", self._checkpointed())

    def _checkpointed(self) -> dict:
        return {"encoder": self.encoder, "decoder": self.decoder, "scaler": self.scaler}
