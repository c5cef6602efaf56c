"""Class-conditional DCGAN with an auxiliary classifier (ACGAN, Odena et al. 2017).

Generator: cdcgan.py's (dcgan.py's, fed the noise z concatenated with the one-hot label).
Discriminator: dcgan.py's convolutional body phi(x) with two heads: its last layer gives the
source logit (real or fake), and a linear layer on the flattened 4x4 feature map gives the
class logits. Losses, as in the paper: the discriminator maximizes L_S + L_C, the log
likelihood of the right source plus that of the right class on real and on generated
images; the generator maximizes L_C - L_S, here in its non-saturating form
-log D_S(G(z, y)) plus the cross-entropy of its samples' class logits against y.
`aux_weight` (1.0) scales L_C in both. Followed: the paper's section 3 and
eriklindernoren/PyTorch-GAN `implementations/acgan/acgan.py` (two heads on one body, the
class loss on real and fake images in the discriminator's step). Optimizers, initialization
and padding are dcgan.py's; the fakes of a step are generated for the labels of the real
batch, as in cdcgan.py, so the two conditional GANs differ in their discriminator alone.

The auxiliary classifier rewards the generator for samples that the discriminator's
classifier finds easy, which is known to push samples of a class towards its easily
classified part (Odena et al. section 4; Miyato & Koyama 2018; Shu et al. 2017): a high
conditional accuracy and a lower intra-class diversity than a projection discriminator's
are expected; README.md's class-conditional section has what digits-cond measures. Images
only.
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
from bench.errors import UserError
from bench.models import Budget, Progress, Spent, register_model


class AuxiliaryDiscriminator(nn.Module):
    """(source logit, class logits) of x: the DCGAN discriminator's body phi up to its 4x4
    feature map, its final 4x4 convolution as the source head, a linear class head."""

    def __init__(self, channels: int, size: int, width: int, num_classes: int):
        super().__init__()
        body = ConvDiscriminator(channels, size, width, batch_norm=True).net
        self.phi, self.source = body[:-1], body[-1]
        self.classes = nn.Linear(self.source.in_channels * 16, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.phi(x)
        return self.source(h).flatten(), self.classes(h.flatten(1))


@register_model("acgan")
class ACGAN:
    """Conditional DCGAN with an auxiliary classifier head on the discriminator (images
    only); options: num_classes (given by the harness), z_dim=64, width=32 (as dcgan),
    aux_weight=1.0 (the class loss's weight), batch_size=64, lr=2e-4, betas=(0.5, 0.999),
    device=None (cuda if available)."""

    nfe = 1  # one network evaluation per sample

    def __init__(
        self,
        shape: tuple[int, ...],
        kind: str = "images",
        *,
        num_classes: int,
        z_dim: int = 64,
        width: int = 32,
        aux_weight: float = 1.0,
        batch_size: int = 64,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        device: str | None = None,
    ):
        self.shape, self.kind = tuple(shape), kind
        self.num_classes = check_conditional("acgan", kind, num_classes)
        if isinstance(aux_weight, bool) or not isinstance(aux_weight, int | float):
            raise UserError(f"acgan: aux_weight must be a number >= 0, not {aux_weight!r}")
        if not aux_weight >= 0:
            raise UserError(f"acgan: aux_weight must be a number >= 0, not {aux_weight!r}")
        self.device = resolve_device(device)
        self.aux_weight = float(aux_weight)
        self.batch_size, self.lr, self.betas = batch_size, lr, tuple(betas)
        self.config = {"z_dim": z_dim, "width": width, "num_classes": self.num_classes}
        self.size = pow2_size(max(self.shape[1:]))
        self._build(seed=0)

    def _build(self, seed: int) -> None:
        c, K = self.config, self.num_classes
        with seeded(seed):
            self.G = ConvGenerator(c["z_dim"] + K, self.shape[0], self.size, c["width"])
            self.D = AuxiliaryDiscriminator(self.shape[0], self.size, c["width"], K)
            dcgan_init(self.G)
            dcgan_init(self.D)
        self.G.to(self.device)
        self.D.to(self.device)

    # Copied from baselines.cdcgan.CDCGAN._generate
    def _generate(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Generator output in [-1, 1] at the data's shape."""
        x = self.G(torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1))
        return crop_to(x, *self.shape[1:])

    def _discriminate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.D(pad_to(x, self.size, self.size, value=-1.0))

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        labels = training_labels("acgan", data, self.num_classes)
        self._build(seed)
        opt_g = torch.optim.Adam(self.G.parameters(), lr=self.lr, betas=self.betas)
        opt_d = torch.optim.Adam(self.D.parameters(), lr=self.lr, betas=self.betas)
        gen = device_generator(seed, self.device)
        stream = labelled_batches(data.train.x, labels, self.batch_size, seed)
        z_dim, w = self.config["z_dim"], self.aux_weight
        self.G.train()
        self.D.train()

        def step() -> dict[str, float]:
            x, y = next(stream)
            real, y = to_signed(x.to(self.device)), y.to(self.device)
            z = torch.randn((len(real), z_dim), generator=gen, device=self.device)
            fake = self._generate(z, y)
            # discriminator: -L_S - L_C, the source in logits, the class on real and fake
            (s_real, c_real), (s_fake, c_fake) = (
                self._discriminate(real),
                self._discriminate(fake.detach()),
            )
            loss_source = F.softplus(-s_real).mean() + F.softplus(s_fake).mean()
            loss_class = F.cross_entropy(c_real, y) + F.cross_entropy(c_fake, y)
            loss_d = loss_source + w * loss_class
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            # generator, non-saturating: -log D_S(G(z, y)) + CE(D_C(G(z, y)), y)
            s_gen, c_gen = self._discriminate(fake)
            loss_g = F.softplus(-s_gen).mean() + w * F.cross_entropy(c_gen, y)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            return {
                "loss": loss_d.item(),
                "loss_d": loss_d.item(),
                "loss_g": loss_g.item(),
                "loss_class_real": F.cross_entropy(c_real.detach(), y).item(),
            }

        spent = train_loop(step, budget, progress)
        self.G.eval()
        self.D.eval()
        return spent

    # Copied from baselines.cdcgan.CDCGAN.sample with cdcgan->acgan
    @torch.inference_mode()
    def sample(
        self, n: int, *, labels: torch.Tensor, generator: torch.Generator, batch_size: int = 256
    ) -> torch.Tensor:
        labels = sample_labels("acgan", labels, n, self.num_classes).to(self.device)
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
        load_checkpoint(sd, self.config, "acgan", {"G": self.G, "D": self.D})
