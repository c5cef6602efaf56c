"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"),
small, for 8x8 to 32x32 images; the architecture and training follow NVlabs
stylegan2-ada-pytorch (training/networks.py, training/loss.py, training/training_loop.py).

Generator: a mapping MLP z -> w (z normalized to unit second moment, equalized learning
rate, lr multiplier 0.01, LeakyReLU(0.2) with gain sqrt 2) and a synthesis network that
starts from a learned 4x4 constant and doubles the resolution per block (bilinear upsampling,
then two 3x3 convolutions), each convolution styled by its own w. Styles enter by weight
modulation/demodulation, not AdaIN: StyleGAN2 replaced AdaIN because normalizing the
activations by their measured statistics produces the "droplet" artifacts (the generator
hides a strong spike to control the normalization), while demodulation normalizes the
expected statistics through the weights. Each convolution adds per-pixel noise scaled by a
learned per-layer strength (zero at init); images are the sum of each block's 1x1 to-image
output, upsampled (the "skip" generator). The mapping tracks the average w (decay 0.995).

Discriminator: the residual StyleGAN2 discriminator (1x1 from-image, per resolution two 3x3
convolutions and a 1x1 skip, average-pool downsampling, scaled by sqrt 1/2), minibatch
standard deviation (groups of 4) and two dense layers at 4x4.

Training: non-saturating logistic loss; style mixing regularization (with probability 0.9
a batch's w switches to another z's w from a random layer on); lazy R1 on reals every
`r1_every` steps, weighted by that interval, with Adam's lr and betas adjusted by
interval / (interval + 1); Adam(lr, betas (0, 0.99)); samples come from an exponential
moving average of the generator (half-life 10k images, ramped up over the first 5% of
images seen, as the reference's CIFAR config). Left out: path length regularization,
adaptive augmentation, the [1 3 3 1] resampling filter (bilinear instead) and mixed precision.

Sampling options (one trained model serves them all): `truncation` psi (w -> w_avg + psi
(w - w_avg); 1.0: none, 0: every sample is the image of w_avg) and `noise` ("random":
fresh noise per sample from the caller's generator; "const": one fixed noise map per layer).
Images only.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from baselines.layers import (
    batches,
    checkpoint,
    crop_to,
    device_generator,
    load_checkpoint,
    pad_to,
    pow2_size,
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

LRELU_GAIN = math.sqrt(2.0)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU(0.2) with the gain that keeps unit variance (bias_act's 'lrelu')."""
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class Dense(nn.Module):
    """Equalized-learning-rate linear layer (FullyConnectedLayer): weights N(0, 1) / lr_mul,
    scaled at run time by lr_mul / sqrt(fan_in)."""

    def __init__(self, cin: int, cout: int, *, lr_mul: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init)))
        self.weight_gain, self.lr_mul = lr_mul / math.sqrt(cin), lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)


class Conv(nn.Module):
    """Equalized-learning-rate convolution (Conv2dLayer), optional 2x average-pool after."""

    def __init__(self, cin: int, cout: int, k: int, *, bias: bool = True, down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.weight_gain, self.down = 1 / math.sqrt(cin * k * k), down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.weight.shape[-1]
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=k // 2)
        return F.avg_pool2d(x, 2) if self.down else x


class Mapping(nn.Module):
    """z -> w, and the tracked average w (MappingNetwork)."""

    def __init__(self, z_dim: int, w_dim: int, layers: int, w_avg_beta: float = 0.995):
        super().__init__()
        dims = [z_dim] + [w_dim] * layers
        self.fcs = nn.ModuleList(
            Dense(a, b, lr_mul=0.01) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.w_avg_beta = w_avg_beta

    def forward(self, z: torch.Tensor, *, track: bool = False) -> torch.Tensor:
        x = normalize_2nd_moment(z)
        for fc in self.fcs:
            x = lrelu(fc(x))
        if track:
            self.w_avg.copy_(x.detach().mean(0).lerp(self.w_avg, self.w_avg_beta))
        return x

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        return w if psi == 1 else self.w_avg.lerp(w, psi)


def modulated_conv2d(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool
) -> torch.Tensor:
    """modulated_conv2d's non-fused path: scale the input channels by the styles, convolve,
    scale the output channels by the demodulation coefficients (the same as modulating and
    demodulating the weights per sample, without a grouped convolution)."""
    n = x.shape[0]
    k = weight.shape[-1]
    x = F.conv2d(x * styles[:, :, None, None], weight, padding=k // 2)
    if demodulate:
        # sum over I, k, k of (weight * style)^2, without forming the [N, O, I, k, k] weights
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).T + 1e-8).rsqrt()
        x = x * dcoefs.reshape(n, -1, 1, 1)
    return x


class StyledConv(nn.Module):
    """SynthesisLayer: modulated 3x3 convolution, noise, bias, LeakyReLU."""

    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, up: bool):
        super().__init__()
        self.affine = Dense(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.up, self.resolution = up, resolution

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = modulated_conv2d(x, self.weight, self.affine(w), demodulate=True)
        x = x + noise * self.noise_strength
        return lrelu(x + self.bias[None, :, None, None])


class ToImage(nn.Module):
    """ToRGBLayer: modulated 1x1 convolution without demodulation, plus bias."""

    def __init__(self, cin: int, channels: int, w_dim: int):
        super().__init__()
        self.affine = Dense(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(channels, cin, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.weight_gain = 1 / math.sqrt(cin)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return x + self.bias[None, :, None, None]


def channels_at(resolution: int, width: int) -> int:
    """`width` channels at 4x4, halved per doubling, at least 16."""
    return max(16, width * 4 // resolution)


class Synthesis(nn.Module):
    """The learned constant and the blocks 4x4 .. size ("skip" architecture). Block b reads
    w number b*2 .. b*2+2 (its to-image shares the next block's first w), so there are
    2 * blocks ws in all, as SynthesisNetwork's num_ws."""

    def __init__(self, w_dim: int, channels: int, size: int, width: int):
        super().__init__()
        c4 = channels_at(4, width)
        self.const = nn.Parameter(torch.randn(c4, 4, 4))
        self.convs = nn.ModuleList([StyledConv(c4, c4, w_dim, 4, up=False)])
        self.to_images = nn.ModuleList([ToImage(c4, channels, w_dim)])
        res, cin = 8, c4
        while res <= size:
            cout = channels_at(res, width)
            self.convs.append(StyledConv(cin, cout, w_dim, res, up=True))
            self.convs.append(StyledConv(cout, cout, w_dim, res, up=False))
            self.to_images.append(ToImage(cout, channels, w_dim))
            res, cin = res * 2, cout
        self.num_ws = len(self.convs) + 1

    def noise_shapes(self) -> list[tuple[int, int]]:
        return [(conv.resolution, conv.resolution) for conv in self.convs]

    def forward(self, ws: torch.Tensor, noises: list[torch.Tensor | None]) -> torch.Tensor:
        """ws: [N, num_ws, w_dim]; noises: one [N, 1, H, W] map per convolution, or None
        for the layer's constant noise."""
        x = self.const[None].expand(len(ws), -1, -1, -1)
        img = None
        for i, conv in enumerate(self.convs):
            noise = noises[i] if noises[i] is not None else conv.noise_const[None, None]
            x = conv(x, ws[:, i], noise)
            if i % 2 == 0:  # the last convolution of its block (4x4 has one)
                block = i // 2
                if img is not None:
                    img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
                y = self.to_images[block](x, ws[:, i + 1])
                img = y if img is None else img + y
        return img


class Discriminator(nn.Module):
    """The residual StyleGAN2 discriminator with minibatch standard deviation."""

    def __init__(self, channels: int, size: int, width: int, mbstd_group: int = 4):
        super().__init__()
        c = channels_at(size, width)
        self.from_image = Conv(channels, c, 1)
        self.blocks = nn.ModuleList()
        res = size
        while res > 4:
            cout = channels_at(res // 2, width)
            self.blocks.append(
                nn.ModuleDict(
                    {
                        "conv0": Conv(c, c, 3),
                        "conv1": Conv(c, cout, 3, down=True),
                        "skip": Conv(c, cout, 1, bias=False, down=True),
                    }
                )
            )
            res, c = res // 2, cout
        self.mbstd_group = mbstd_group
        self.conv = Conv(c + 1, c, 3)
        self.fc = Dense(c * 16, c)
        self.out = Dense(c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = lrelu(self.from_image(x))
        for b in self.blocks:
            y = b["skip"](x) * math.sqrt(0.5)
            x = lrelu(b["conv1"](lrelu(b["conv0"](x)))) * math.sqrt(0.5)
            x = x + y
        x = torch.cat([x, self.minibatch_std(x)], dim=1)
        x = lrelu(self.conv(x))
        return self.out(lrelu(self.fc(x.flatten(1)))).flatten()

    def minibatch_std(self, x: torch.Tensor) -> torch.Tensor:
        """MinibatchStdLayer with one channel: the mean std over groups of samples."""
        n, c, h, w = x.shape
        g = min(self.mbstd_group, n) if n % min(self.mbstd_group, n) == 0 else 1
        y = x.reshape(g, -1, c, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean(dim=[1, 2, 3])
        return y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)


@register_model("stylegan")
class StyleGAN:
    """StyleGAN2-style GAN (mapping network, modulated convolutions, noise inputs, style
    mixing, lazy R1); options: z_dim=64, w_dim=64, mapping_layers=4, width=64 (channels at
    4x4, halved per doubling, at least 16; the discriminator mirrors it), batch_size=32,
    lr=2e-3, betas=(0.0, 0.99), r1_gamma=2.0, r1_every=16, mixing=0.9; sampling:
    truncation=1.0 (psi), noise="random"|"const"; device=None (cuda if available)."""

    nfe = 1  # one generator evaluation per sample
    SAMPLE_OPTIONS = ("truncation", "noise")
    SWEEP_OPTIONS = {"truncation": "psi"}  # the report's sweeps: rows that differ in psi alone
    latent_interpolation = "lerp"  # perceptual path length's paths run in W

    def __init__(
        self,
        shape: tuple[int, ...],
        kind: str = "images",
        *,
        z_dim: int = 64,
        w_dim: int = 64,
        mapping_layers: int = 4,
        width: int = 64,
        batch_size: int = 32,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.0, 0.99),
        r1_gamma: float = 2.0,
        r1_every: int = 16,
        mixing: float = 0.9,
        truncation: float = 1.0,
        noise: str = "random",
        device: str | None = None,
    ):
        if kind != "images":
            raise UserError(f"stylegan models images only, not {kind}")
        self.shape = tuple(shape)
        self.size = pow2_size(max(self.shape[1:]))
        if self.size > 32:
            raise UserError(f"stylegan: images up to 32x32, not {self.shape[1]}x{self.shape[2]}")
        self.truncation = check_truncation(truncation)
        if noise not in ("random", "const"):
            raise UserError(f"stylegan: noise must be 'random' or 'const', not {noise!r}")
        if isinstance(r1_every, bool) or not isinstance(r1_every, int) or r1_every < 1:
            raise UserError(f"stylegan: r1_every must be a positive int, not {r1_every!r}")
        self.noise = noise
        self.device = resolve_device(device)
        self.batch_size, self.lr, self.betas = batch_size, lr, tuple(betas)
        self.r1_gamma, self.r1_every, self.mixing = float(r1_gamma), r1_every, float(mixing)
        self.config = {
            "z_dim": z_dim,
            "w_dim": w_dim,
            "mapping_layers": mapping_layers,
            "width": width,
        }
        self._build(seed=0)

    @property
    def sample_options(self) -> dict:
        return {"truncation": self.truncation, "noise": self.noise}

    def _build(self, seed: int) -> None:
        c = self.config
        with seeded(seed):
            self.mapping = Mapping(c["z_dim"], c["w_dim"], c["mapping_layers"])
            self.synthesis = Synthesis(c["w_dim"], self.shape[0], self.size, c["width"])
            self.D = Discriminator(self.shape[0], self.size, c["width"])
        self.G = nn.ModuleDict({"mapping": self.mapping, "synthesis": self.synthesis})
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        for m in (self.G, self.G_ema, self.D):
            m.to(self.device)

    # ------------------------------------------------------------------------ generator

    def _ws(self, G: nn.ModuleDict, z: torch.Tensor, track: bool = False) -> torch.Tensor:
        """[N, num_ws, w_dim]: each z's w broadcast to every layer."""
        w = G["mapping"](z, track=track)
        return w[:, None].expand(-1, G["synthesis"].num_ws, -1)

    def _noises(self, n: int, draw, const: bool) -> list[torch.Tensor | None]:
        """A noise map per convolution drawn by `draw(shape)`, or None (constant noise)."""
        if const:
            return [None] * len(self.synthesis.convs)
        return [draw((n, 1, h, w)) for h, w in self.synthesis.noise_shapes()]

    def _mixed_ws(self, z: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Style mixing regularization (loss.py's style_mixing_prob): with probability
        `mixing`, the layers from a random cutoff on take the w of another z."""
        ws = self._ws(self.G, z, track=True)
        num_ws = ws.shape[1]
        cutoff = int(torch.randint(1, num_ws, (), generator=gen, device=self.device))
        if float(torch.rand((), generator=gen, device=self.device)) >= self.mixing:
            return ws
        z2 = torch.randn(z.shape, generator=gen, device=self.device)
        ws2 = self._ws(self.G, z2)
        return torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)

    def _fake(self, n: int, gen: torch.Generator) -> torch.Tensor:
        z = torch.randn((n, self.config["z_dim"]), generator=gen, device=self.device)
        ws = self._mixed_ws(z, gen)
        noises = self._noises(
            n, lambda s: torch.randn(s, generator=gen, device=self.device), const=False
        )
        return self.synthesis(ws, noises)

    # ------------------------------------------------------------------------ training

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return pad_to(to_signed(x.to(self.device)), self.size, self.size, value=-1.0)

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        self._build(seed)
        opt_g = torch.optim.Adam(self.G.parameters(), lr=self.lr, betas=self.betas)
        ratio = self.r1_every / (self.r1_every + 1)  # lazy regularization (training_loop.py)
        betas_d = (self.betas[0] ** ratio, self.betas[1] ** ratio)
        opt_d = torch.optim.Adam(self.D.parameters(), lr=self.lr * ratio, betas=betas_d)
        gen = device_generator(seed, self.device)
        stream = batches(data.train.x, self.batch_size, seed)
        self.G.train()
        self.D.train()
        images_seen, steps = 0, 0

        def step() -> dict[str, float]:
            nonlocal images_seen, steps
            real = self._prepare(next(stream))
            n = len(real)
            # discriminator: softplus(D(fake)) + softplus(-D(real))
            with torch.no_grad():
                fake = self._fake(n, gen)
            loss_d = F.softplus(self.D(fake)).mean() + F.softplus(-self.D(real)).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            images_seen, steps = images_seen + n, steps + 1
            losses = {"loss": loss_d.item(), "loss_d": loss_d.item()}
            if steps % self.r1_every == 0:
                losses["r1"] = self._r1_step(real, opt_d)
            # generator, non-saturating: softplus(-D(G(z)))
            self.D.requires_grad_(False)
            loss_g = F.softplus(-self.D(self._fake(n, gen))).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            self.D.requires_grad_(True)
            self._update_ema(images_seen, n)
            return losses | {"loss_g": loss_g.item()}

        spent = train_loop(step, budget, progress)
        self.G.eval()
        self.D.eval()
        return spent

    def _r1_step(self, real: torch.Tensor, opt_d: torch.optim.Optimizer) -> float:
        """Lazy R1 (loss.py Dreg): gamma/2 * |grad D(real)|^2, times the interval."""
        real = real.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.D(real).sum(), real, create_graph=True)
        penalty = grad.square().sum(dim=[1, 2, 3])
        loss = (penalty * (self.r1_gamma / 2)).mean() * self.r1_every
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()
        return float(penalty.detach().mean())

    @torch.no_grad()
    def _update_ema(self, images_seen: int, batch: int) -> None:
        """G_ema (training_loop.py): half-life 10k images, ramped up (0.05 of images seen);
        buffers (w_avg, constant noise) are copied."""
        half_life = min(10_000, images_seen * 0.05)
        beta = 0.5 ** (batch / max(half_life, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)

    # ------------------------------------------------------------------------ sampling

    def _render(self, ws: torch.Tensor, generator: torch.Generator | None, const: bool):
        """Images in [-1, 1] (unclamped) of the data's size from ws; noise from the caller's
        generator, or the layers' constants."""
        draw = lambda s: randn(s, generator, self.device)  # noqa: E731
        noises = self._noises(len(ws), draw, const=const)
        return crop_to(self.G_ema["synthesis"](ws, noises), *self.shape[1:])

    def _broadcast(self, w: torch.Tensor) -> torch.Tensor:
        return w[:, None].expand(-1, self.synthesis.num_ws, -1)

    @torch.inference_mode()
    def sample(self, n: int, *, generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
        out = []
        const = self.noise == "const"
        for i in range(0, n, batch_size):
            w = self.draw_latents(min(batch_size, n - i), generator=generator)
            out.append(to_uint8(self._render(self._broadcast(w), generator, const)))
        return torch.cat(out) if out else torch.empty((0, *self.shape), dtype=torch.uint8)

    @torch.inference_mode()
    def draw_latents(self, n: int, *, generator: torch.Generator) -> torch.Tensor:
        """The w of n latents z from `generator`, truncated by psi (PPL's paths run in W)."""
        mapping = self.G_ema["mapping"]
        z = randn((n, self.config["z_dim"]), generator, self.device)
        return mapping.truncate(mapping(z), self.truncation)

    @torch.inference_mode()
    def decode(self, w: torch.Tensor) -> torch.Tensor:
        """Float images in [-1, 1] of w, unquantized, with the layers' constant noise (as
        the reference's perceptual path length)."""
        return self._render(self._broadcast(w.to(self.device)), None, const=True)

    def state_dict(self) -> dict:
        return checkpoint(self.config, self._checkpointed())

    def load_state_dict(self, sd: dict) -> None:
        load_checkpoint(sd, self.config, "stylegan", self._checkpointed())

    def _checkpointed(self) -> dict:
        return {"G": self.G, "G_ema": self.G_ema, "D": self.D}


def check_truncation(psi: object) -> float:
    if isinstance(psi, bool) or not isinstance(psi, int | float) or not 0 <= psi <= 1:
        raise UserError(
            f"stylegan: truncation (psi) must be a number in [0, 1] (1: none), not {psi!r}"
        )
    return float(psi)
