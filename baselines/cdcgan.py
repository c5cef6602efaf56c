"""Class-conditional DCGAN with a projection discriminator (Miyato & Koyama 2018).

Generator: dcgan.py's, fed the noise z concatenated with the one-hot label. Discriminator:
dcgan.py's convolutional body phi(x) (its 4x4 feature map, flattened) and its last layer as
psi, plus the projection term: D(x, y) = psi(phi(x)) + <embed(y), phi(x)>. Loss, optimizers,
initialization and padding are those of dcgan.py; the fakes of a step are generated for the
labels of the real batch, so the discriminator compares both at the same classes.

Why projection and not ACGAN (Odena et al. 2017): ACGAN's auxiliary classifier rewards the
generator for samples that are easy to classify, which is known to reduce intra-class
diversity (Miyato & Koyama; Shu et al. 2017) and would inflate the conditional-accuracy
metric this family is scored on. The projection discriminator only asks that (x, y) look
like a real pair.

Images only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.layers import (
    ConvDiscriminator,
    ConvGenerator,
    check_conditional,
    checkpoint,
    crop_to,
    dcgan_init,
    device_generator,
    labelled_batches,
    load_checkpoint,
    pad_to,
    pow2_size,
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
from bench.models import Budget, Progress, Spent, register_model


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = psi(phi(x)) + <embed(y), phi(x)>: phi is the DCGAN discriminator up to its
    4x4 feature map, psi its final 4x4 convolution (a linear map of that map)."""

    def __init__(self, channels: int, size: int, width: int, num_classes: int):
        super().__init__()
        body = ConvDiscriminator(channels, size, width, batch_norm=True).net
        self.phi, self.psi = body[:-1], body[-1]
        self.embed = nn.Embedding(num_classes, self.psi.in_channels * 16)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.phi(x)
        return self.psi(h).flatten() + (self.embed(y) * h.flatten(1)).sum(1)


@register_model("cdcgan")
class CDCGAN:
    """Conditional DCGAN with a projection discriminator (images only); options:
    num_classes (given by the harness), z_dim=64, width=32 (as dcgan), batch_size=64,
    lr=2e-4, betas=(0.5, 0.999), device=None (cuda if available)."""

    nfe = 1  # one network evaluation per sample

    def __init__(
        self,
        shape: tuple[int, ...],
        kind: str = "images",
        *,
        num_classes: int,
        z_dim: int = 64,
        width: int = 32,
        batch_size: int = 64,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        device: str | None = None,
    ):
        self.shape, self.kind = tuple(shape), kind
        self.num_classes = check_conditional("cdcgan", kind, num_classes)
        self.device = resolve_device(device)
        self.batch_size, self.lr, self.betas = batch_size, lr, tuple(betas)
        self.config = {"z_dim": z_dim, "width": width, "num_classes": self.num_classes}
        self.size = pow2_size(max(self.shape[1:]))
        self._build(seed=0)

    def _build(self, seed: int) -> None:
        c, K = self.config, self.num_classes
        with seeded(seed):
            self.G = ConvGenerator(c["z_dim"] + K, self.shape[0], self.size, c["width"])
            self.D = ProjectionDiscriminator(self.shape[0], self.size, c["width"], K)
            dcgan_init(self.G)
            dcgan_init(self.D)
            nn.init.normal_(self.D.embed.weight, 0.0, 0.02)  # as the other weights
        self.G.to(self.device)
        self.D.to(self.device)

    def _generate(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Generator output in [-1, 1] at the data's shape."""
        x = self.G(torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1))
        return crop_to(x, *self.shape[1:])

    def _discriminate(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.D(pad_to(x, self.size, self.size, value=-1.0), y)

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        labels = training_labels("cdcgan", data, self.num_classes)
        self._build(seed)
        opt_g = torch.optim.Adam(self.G.parameters(), lr=self.lr, betas=self.betas)
        opt_d = torch.optim.Adam(self.D.parameters(), lr=self.lr, betas=self.betas)
        gen = device_generator(seed, self.device)
        stream = labelled_batches(data.train.x, labels, self.batch_size, seed)
        z_dim = self.config["z_dim"]
        self.G.train()
        self.D.train()

        def step() -> dict[str, float]:
            x, y = next(stream)
            real, y = to_signed(x.to(self.device)), y.to(self.device)
            z = torch.randn((len(real), z_dim), generator=gen, device=self.device)
            fake = self._generate(z, y)
            # discriminator: -log D(real, y) - log(1 - D(fake, y)), in logits
            d_real, d_fake = self._discriminate(real, y), self._discriminate(fake.detach(), y)
            loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            # generator, non-saturating: -log D(G(z, y), y)
            loss_g = F.softplus(-self._discriminate(fake, y)).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            return {"loss": loss_d.item(), "loss_d": loss_d.item(), "loss_g": loss_g.item()}

        spent = train_loop(step, budget, progress)
        self.G.eval()
        self.D.eval()
        return spent

    @torch.inference_mode()
    def sample(
        self, n: int, *, labels: torch.Tensor, generator: torch.Generator, batch_size: int = 256
    ) -> torch.Tensor:
        labels = sample_labels("cdcgan", labels, n, self.num_classes).to(self.device)
        self.G.eval()
        z_dim = self.config["z_dim"]
        out = []
        for i in range(0, n, batch_size):
            y = labels[i : i + batch_size]
            out.append(self._generate(randn((len(y), z_dim), generator, self.device), y))
        return to_uint8(torch.cat(out))

    def state_dict(self) -> dict:
        return checkpoint(self.config, {"G": self.G, "D": self.D})

    def load_state_dict(self, sd: dict) -> None:
        load_checkpoint(sd, self.config, "cdcgan", {"G": self.G, "D": self.D})
