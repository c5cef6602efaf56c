"""pix2pix (Isola et al. 2017): paired image-to-image translation with a conditional GAN.

Generator: a U-Net (stride-2 4x4 convolutions down to 4x4, transposed convolutions back up,
each level's encoder features concatenated into its decoder; batch norm, LeakyReLU(0.2)
down, ReLU up, dropout 0.5 in the innermost decoder levels, tanh out). Images are padded
to the power of two >= their size (28 -> 32) with black and cropped back.
Discriminator: a PatchGAN on (source, image) pairs, scaled to the size: the paper's 70x70
patches are 27% of a 256-pixel image; here one stride-2 4x4 and two 3x3 convolutions see
12x12 patches of the 32-pixel image (37%), each patch judged real or fake.
Loss: the GAN loss (non-saturating, in logits) + 100 * L1 to the true target; Adam(2e-4,
betas (0.5, 0.999)). One optimizer step = one discriminator and one generator update on a
batch of pairs. Translation runs the generator in eval mode (dropout off, batch-norm
running statistics), so a translation depends on its input alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.layers import (
    batches,
    checkpoint,
    crop_to,
    dcgan_init,
    load_checkpoint,
    pad_to,
    pow2_size,
    resolve_device,
    seeded,
    to_signed,
    to_uint8,
    train_loop,
)
from bench.data import ImageDataset
from bench.models import Budget, Progress, Spent, register_model
from bench.translation import source


class UNet(nn.Module):
    """A U-Net from `size` (a power of two) down to 4x4 and back, skips at every level."""

    def __init__(self, channels_in: int, channels_out: int, size: int, width: int):
        super().__init__()
        levels = max(1, (size // 4).bit_length() - 1)  # 32 -> 3 halvings to 4x4
        widths = [min(width * 2**i, 8 * width) for i in range(levels)]
        self.down = nn.ModuleList()
        cin = channels_in
        for i, w in enumerate(widths):
            norm = nn.BatchNorm2d(w) if i > 0 else nn.Identity()
            self.down.append(
                nn.Sequential(nn.Conv2d(cin, w, 4, 2, 1, bias=False), norm, nn.LeakyReLU(0.2))
            )
            cin = w
        self.up = nn.ModuleList()
        for i in reversed(range(levels)):
            w_out = widths[i - 1] if i > 0 else width
            cin_up = widths[i] * (1 if i == levels - 1 else 2)
            dropout = nn.Dropout(0.5) if i >= levels - 2 and levels > 2 else nn.Identity()
            self.up.append(
                nn.Sequential(
                    nn.ConvTranspose2d(cin_up, w_out, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(w_out),
                    dropout,
                    nn.ReLU(),
                )
            )
        self.out = nn.Sequential(nn.Conv2d(width, channels_out, 3, 1, 1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the innermost level has no skip
        for i, layer in enumerate(self.up):
            x = layer(x if i == 0 else torch.cat([x, skips.pop()], dim=1))
        return self.out(x)


class PatchDiscriminator(nn.Module):
    """A PatchGAN at small sizes: one stride-2 4x4 convolution and two 3x3 ones, a logit per
    12x12 patch."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_model("pix2pix")
class Pix2Pix:
    """pix2pix; options: width=32 (U-Net channels at the first level, doubled per level up
    to 8x; discriminator channels), l1_weight=100, batch_size=32, lr=2e-4,
    betas=(0.5, 0.999), device=None (cuda if available). Paired tasks only."""

    needs_pairs = True

    def __init__(
        self,
        shape: tuple[int, ...],
        *,
        width: int = 32,
        l1_weight: float = 100.0,
        batch_size: int = 32,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        device: str | None = None,
    ):
        self.shape = tuple(shape)
        self.device = resolve_device(device)
        self.l1_weight, self.batch_size = float(l1_weight), batch_size
        self.lr, self.betas = lr, tuple(betas)
        self.config = {"width": width}
        self.size = pow2_size(max(self.shape[1:]))
        self._build(seed=0)

    def _build(self, seed: int) -> None:
        c, width = self.shape[0], self.config["width"]
        with seeded(seed):
            self.G = UNet(c, c, self.size, width)
            self.D = PatchDiscriminator(2 * c, width)
            dcgan_init(self.G)
            dcgan_init(self.D)
        self.G.to(self.device)
        self.D.to(self.device)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        return pad_to(x, self.size, self.size, value=-1.0)

    def _translate(self, x: torch.Tensor) -> torch.Tensor:
        """[-1, 1] sources at the padded size -> [-1, 1] translations at the padded size."""
        return self.G(x)

    def fit(self, task: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        self._build(seed)
        opt_g = torch.optim.Adam(self.G.parameters(), lr=self.lr, betas=self.betas)
        opt_d = torch.optim.Adam(self.D.parameters(), lr=self.lr, betas=self.betas)
        torch.manual_seed(seed)  # dropout masks draw from the global RNG
        pairs = torch.arange(len(task.train.x))
        stream = batches(pairs, self.batch_size, seed)
        sources, targets = source(task).train.x, task.train.x
        self.G.train()
        self.D.train()

        def step() -> dict[str, float]:
            idx = next(stream)
            a = self._pad(to_signed(sources[idx].to(self.device)))
            b = self._pad(to_signed(targets[idx].to(self.device)))
            fake = self._translate(a)
            d_real = self.D(torch.cat([a, b], dim=1))
            d_fake = self.D(torch.cat([a, fake.detach()], dim=1))
            loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            loss_gan = F.softplus(-self.D(torch.cat([a, fake], dim=1))).mean()
            loss_l1 = (fake - b).abs().mean()
            loss_g = loss_gan + self.l1_weight * loss_l1
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            return {"loss": loss_g.item(), "loss_d": loss_d.item(), "loss_l1": loss_l1.item()}

        spent = train_loop(step, budget, progress)
        self.G.eval()
        self.D.eval()
        return spent

    @torch.inference_mode()
    def translate(
        self, x: torch.Tensor, *, generator: torch.Generator, batch_size: int = 256
    ) -> torch.Tensor:
        self.G.eval()
        h, w = self.shape[1:]
        out = [
            crop_to(
                self._translate(self._pad(to_signed(x[i : i + batch_size].to(self.device)))), h, w
            )
            for i in range(0, len(x), batch_size)
        ]
        return to_uint8(torch.cat(out))

    def state_dict(self) -> dict:
        return checkpoint(self.config, {"G": self.G, "D": self.D})

    def load_state_dict(self, sd: dict) -> None:
        load_checkpoint(sd, self.config, "pix2pix", {"G": self.G, "D": self.D})
