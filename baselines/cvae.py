"""Conditional VAE (Sohn et al. 2015): encoder q(z | x, y), decoder p(x | z, y), prior N(0, I).

The networks and the likelihood are vae.py's: a convolutional Gaussian encoder, analytic KL
to N(0, I), and a discretized logistic decoder over the 256 pixel values. The label enters
the encoder as K constant one-hot image planes stacked on the pixels, and the decoder as the
one-hot vector concatenated to z. Training minimizes the conditional -ELBO in bits per dim.

`sample` decodes z ~ N(0, I) with the asked labels and returns the decoder mean by default
(sample_mode="mean", as vae.py); sample_mode="sample" draws the pixels from the decoder.

Images only. No likelihood: the ELBO here bounds log p(x | y), and the bits_per_dim metric
asks for p(x).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from baselines.layers import (
    check_conditional,
    checkpoint,
    crop_to,
    device_generator,
    labelled_batches,
    load_checkpoint,
    pad_to,
    pow2_size,
    rand,
    randn,
    resolve_device,
    sample_labels,
    seeded,
    to_signed,
    to_uint8,
    train_loop,
    training_labels,
)
from baselines.vae import ConvDecoder, ConvEncoder, discretized_logistic_log_prob
from bench.data import ImageDataset
from bench.errors import UserError
from bench.models import Budget, Progress, Spent, register_model


@register_model("cvae")
class CVAE:
    """Conditional convolutional VAE with a discretized logistic decoder (images only).

    Options: num_classes (given by the harness), z_dim=16, width=32 (as vae),
    batch_size=64, lr=1e-3, sample_mode="mean"|"sample", device=None (cuda if available).
    """

    nfe = 1  # one network evaluation per sample
    # Options that change sampling only: one trained model serves them all.
    SAMPLE_OPTIONS = ("sample_mode",)

    def __init__(
        self,
        shape: tuple[int, ...],
        kind: str = "images",
        *,
        num_classes: int,
        z_dim: int = 16,
        width: int = 32,
        batch_size: int = 64,
        lr: float = 1e-3,
        sample_mode: str = "mean",
        device: str | None = None,
    ):
        self.shape, self.kind = tuple(shape), kind
        self.num_classes = check_conditional("cvae", kind, num_classes)
        self.device = resolve_device(device)
        if sample_mode not in ("mean", "sample"):
            raise UserError(f"cvae: sample_mode must be 'mean' or 'sample', not {sample_mode!r}")
        self.sample_mode = sample_mode
        self.batch_size, self.lr = batch_size, lr
        self.config = {"z_dim": z_dim, "width": width, "num_classes": self.num_classes}
        self.size = pow2_size(max(self.shape[1:]))
        self._build(seed=0)

    def _build(self, seed: int) -> None:
        c, K, channels = self.config, self.num_classes, self.shape[0]
        with seeded(seed):
            self.encoder = ConvEncoder(channels + K, self.size, c["width"], c["z_dim"])
            self.decoder = ConvDecoder(channels, self.size, c["width"], c["z_dim"] + K)
        self.encoder.to(self.device)
        self.decoder.to(self.device)

    def _modules(self) -> list[nn.Module]:
        return [self.encoder, self.decoder]

    # -------------------------------------------------------------------- networks

    def _one_hot(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y, self.num_classes).float()

    def _encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = pad_to(x, self.size, self.size, value=-1.0)
        planes = self._one_hot(y)[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return self.encoder(torch.cat([x, planes], dim=1))

    def _decode(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Discretized logistic (mean, log_scale) at the data's shape."""
        mean, log_scale = self.decoder(torch.cat([z, self._one_hot(y)], dim=1))
        return crop_to(mean, *self.shape[1:]), crop_to(log_scale, *self.shape[1:])

    def _elbo(self, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Per-example ELBO of log p(x | y) in nats, with the given reparameterization noise."""
        mu, logvar = self._encode(x, y)
        z = mu + (0.5 * logvar).exp() * noise
        mean, log_scale = self._decode(z, y)
        rec = discretized_logistic_log_prob(x, mean, log_scale).flatten(1).sum(1)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        return rec - kl

    # -------------------------------------------------------------------- training

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        labels = training_labels("cvae", data, self.num_classes)
        self._build(seed)
        params = [p for m in self._modules() for p in m.parameters()]
        opt = torch.optim.Adam(params, lr=self.lr)
        gen = device_generator(seed, self.device)
        stream = labelled_batches(data.train.x, labels, self.batch_size, seed)
        dims = math.prod(self.shape)
        for m in self._modules():
            m.train()

        def step() -> dict[str, float]:
            x, y = next(stream)
            x, y = to_signed(x.to(self.device)), y.to(self.device)
            noise = torch.randn((len(x), self.config["z_dim"]), generator=gen, device=self.device)
            loss = -self._elbo(x, y, noise).mean() / (dims * math.log(2))  # -ELBO, bits per dim
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
    def sample(
        self, n: int, *, labels: torch.Tensor, generator: torch.Generator, batch_size: int = 256
    ) -> torch.Tensor:
        labels = sample_labels("cvae", labels, n, self.num_classes).to(self.device)
        self.decoder.eval()
        out = []
        for start in range(0, n, batch_size):
            y = labels[start : start + batch_size]
            z = randn((len(y), self.config["z_dim"]), generator, self.device)
            mean, log_scale = self._decode(z, y)
            if self.sample_mode == "sample":  # a logistic draw, discretized by the rounding
                u = rand(mean.shape, generator, self.device).clamp(1e-5, 1 - 1e-5)
                mean = mean + log_scale.exp() * (torch.log(u) - torch.log1p(-u))
            out.append(mean)
        return to_uint8(torch.cat(out).clamp(-1, 1))

    # -------------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict:
        return checkpoint(self.config, {"encoder": self.encoder, "decoder": self.decoder})

    def load_state_dict(self, sd: dict) -> None:
        modules = {"encoder": self.encoder, "decoder": self.decoder}
        load_checkpoint(sd, self.config, "cvae", modules)
