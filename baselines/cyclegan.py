"""CycleGAN (Zhu et al. 2017): unpaired image-to-image translation with cycle consistency.

Two generators, G: A -> B and F: B -> A, each a small ResNet (a 7x7 convolution, two
stride-2 3x3 convolutions down, residual blocks, two transposed convolutions up, a 7x7
convolution to tanh; instance norm, ReLU, reflection padding), and two discriminators, the
PatchGAN of pix2pix (baselines.pix2pix) on single images. Losses: LSGAN (least squares,
real 1, fake 0), cycle consistency |F(G(a)) - a| + |G(F(b)) - b| with weight 10, identity
|G(b) - b| + |F(a) - a| with weight 5 (half the cycle weight, as in the paper); the
discriminators see fakes drawn from a pool of the last 50 generated images (half the
time a stored one, as in the paper). Adam(2e-4, betas (0.5, 0.999)). Pairs, where a task
has them, are ignored: A and B batches are drawn independently. One optimizer step = one
update of both generators, then of both discriminators. The sides must have one shape.
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.layers import (
    batches,
    checkpoint,
    load_checkpoint,
    resolve_device,
    seeded,
    to_signed,
    to_uint8,
    train_loop,
)
from baselines.pix2pix import PatchDiscriminator
from bench.data import ImageDataset
from bench.errors import UserError
from bench.models import Budget, Progress, Spent, register_model
from bench.translation import source


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3),
            nn.InstanceNorm2d(width),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3),
            nn.InstanceNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def resnet_generator(channels: int, width: int, blocks: int) -> nn.Sequential:
    """c7s1-w, d2w, d4w, blocks x R4w, u2w, uw, c7s1-channels (the paper's notation)."""

    def norm_relu(w: int) -> list[nn.Module]:
        return [nn.InstanceNorm2d(w), nn.ReLU()]

    return nn.Sequential(
        nn.ReflectionPad2d(3),
        nn.Conv2d(channels, width, 7),
        *norm_relu(width),
        nn.Conv2d(width, 2 * width, 3, 2, 1),
        *norm_relu(2 * width),
        nn.Conv2d(2 * width, 4 * width, 3, 2, 1),
        *norm_relu(4 * width),
        *[ResidualBlock(4 * width) for _ in range(blocks)],
        nn.ConvTranspose2d(4 * width, 2 * width, 3, 2, 1, output_padding=1),
        *norm_relu(2 * width),
        nn.ConvTranspose2d(2 * width, width, 3, 2, 1, output_padding=1),
        *norm_relu(width),
        nn.ReflectionPad2d(3),
        nn.Conv2d(width, channels, 7),
        nn.Tanh(),
    )


class ImagePool:
    """The last `size` generated images; each query returns, per image, a stored one (which
    the new one replaces) or the new one, with probability 1/2 each once the pool is full
    (Shrivastava et al. 2017, as CycleGAN uses it)."""

    def __init__(self, size: int, generator: torch.Generator):
        self.size, self.generator = size, generator
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                i = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[i])
                self.images[i] = image
            else:
                out.append(image)
        return torch.stack(out)


def init_normal(module: nn.Module) -> None:
    """The paper's init: convolution weights N(0, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@register_model("cyclegan")
class CycleGAN:
    """CycleGAN; options: width=16 (generator channels at full resolution; discriminator
    channels), blocks=3 (residual blocks), cycle_weight=10, identity_weight=5, pool_size=50,
    batch_size=16, lr=2e-4, betas=(0.5, 0.999), device=None (cuda if available)."""

    def __init__(
        self,
        shape: tuple[int, ...],
        *,
        width: int = 16,
        blocks: int = 3,
        cycle_weight: float = 10.0,
        identity_weight: float = 5.0,
        pool_size: int = 50,
        batch_size: int = 16,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        device: str | None = None,
    ):
        if shape[1] % 4 or shape[2] % 4:
            raise UserError(f"cyclegan: image sides must be multiples of 4, got {tuple(shape)}")
        self.shape = tuple(shape)
        self.device = resolve_device(device)
        self.cycle_weight, self.identity_weight = float(cycle_weight), float(identity_weight)
        self.pool_size, self.batch_size = pool_size, batch_size
        self.lr, self.betas = lr, tuple(betas)
        self.config = {"width": width, "blocks": blocks}
        self._build(seed=0)

    def _build(self, seed: int) -> None:
        c, w, blocks = self.shape[0], self.config["width"], self.config["blocks"]
        with seeded(seed):
            self.G_ab, self.G_ba = resnet_generator(c, w, blocks), resnet_generator(c, w, blocks)
            self.D_a, self.D_b = PatchDiscriminator(c, w), PatchDiscriminator(c, w)
            for net in self._nets().values():
                init_normal(net)  # draws from the seeded RNG too
        for net in self._nets().values():
            net.to(self.device)

    def _nets(self) -> dict[str, nn.Module]:
        return {"G_ab": self.G_ab, "G_ba": self.G_ba, "D_a": self.D_a, "D_b": self.D_b}

    def fit(self, task: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        self._build(seed)
        gens = [*self.G_ab.parameters(), *self.G_ba.parameters()]
        discs = [*self.D_a.parameters(), *self.D_b.parameters()]
        opt_g = torch.optim.Adam(gens, lr=self.lr, betas=self.betas)
        opt_d = torch.optim.Adam(discs, lr=self.lr, betas=self.betas)
        pool_gen = torch.Generator().manual_seed(seed)
        pool_a, pool_b = ImagePool(self.pool_size, pool_gen), ImagePool(self.pool_size, pool_gen)
        # independent draws from each side: pairs, where there are any, are not used
        stream_a = batches(source(task).train.x, self.batch_size, seed)
        stream_b = batches(task.train.x, self.batch_size, seed + 1)
        for net in self._nets().values():
            net.train()

        def lsgan(logits: torch.Tensor, real: bool) -> torch.Tensor:
            return ((logits - float(real)) ** 2).mean()

        def step() -> dict[str, float]:
            a = to_signed(next(stream_a).to(self.device))
            b = to_signed(next(stream_b).to(self.device))
            fake_b, fake_a = self.G_ab(a), self.G_ba(b)
            loss_gan = lsgan(self.D_b(fake_b), True) + lsgan(self.D_a(fake_a), True)
            loss_cycle = (self.G_ba(fake_b) - a).abs().mean() + (self.G_ab(fake_a) - b).abs().mean()
            loss_identity = (self.G_ab(b) - b).abs().mean() + (self.G_ba(a) - a).abs().mean()
            loss_g = (
                loss_gan + self.cycle_weight * loss_cycle + self.identity_weight * loss_identity
            )
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            old_b, old_a = pool_b.query(fake_b), pool_a.query(fake_a)
            loss_d = 0.5 * (lsgan(self.D_b(b), True) + lsgan(self.D_b(old_b), False)) + 0.5 * (
                lsgan(self.D_a(a), True) + lsgan(self.D_a(old_a), False)
            )
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            return {"loss": loss_g.item(), "loss_d": loss_d.item(), "loss_cycle": loss_cycle.item()}

        spent = train_loop(step, budget, progress)
        for net in self._nets().values():
            net.eval()
        return spent

    @torch.inference_mode()
    def _run(self, net: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        net.eval()
        out = [
            net(to_signed(x[i : i + batch_size].to(self.device)))
            for i in range(0, len(x), batch_size)
        ]
        return to_uint8(torch.cat(out))

    def translate(
        self, x: torch.Tensor, *, generator: torch.Generator, batch_size: int = 256
    ) -> torch.Tensor:
        return self._run(self.G_ab, x, batch_size)

    def translate_back(
        self, x: torch.Tensor, *, generator: torch.Generator, batch_size: int = 256
    ) -> torch.Tensor:
        return self._run(self.G_ba, x, batch_size)

    def state_dict(self) -> dict:
        return checkpoint(self.config, self._nets())

    def load_state_dict(self, sd: dict) -> None:
        load_checkpoint(sd, self.config, "cyclegan", self._nets())
