"""InfoGAN (Chen et al. 2016): a DCGAN whose generator input holds, beside the noise z, a
categorical code c (one-hot over `categories` values, uniform) and `continuous` codes
(uniform on [-1, 1]), and whose discriminator trunk also feeds a Q head that predicts the
codes from an image. Training adds lambda_cat * CE(c, Q(x)) + lambda_cont * Gaussian NLL of
the continuous codes (the variational lower bound on I(codes; G(z, codes)), up to H(c)) to
the generator's non-saturating loss (defaults lambda_cat 2, lambda_cont 0.05 and 16 noise
dimensions: on digits at 1,500 steps, seed 0, they gave code_accuracy 0.81 where the
usual lambda 1 / 0.1 with 32 noise dimensions gave 0.76 and with 16 noise dimensions 0.48);
G and Q are updated together, the shared trunk only by
the discriminator's loss.

Two terms from outside InfoGAN, off by default, make Q cluster the real images too (no
labels), so that a code value has to look like one cluster of real images:
- lambda_real * `cluster_loss`: Q's categorical prediction confident for each real image
  and balanced over the batch (RIM, Krause et al. 2010, as in IMSAT, Hu et al. 2017), the
  balance weighed by `balance` (IMSAT's mu: 4, its code's default; RIM's is 1). It trains
  Q on the trunk's features of the real batch (not the trunk: sending it into the
  discriminator's loss too gave no better codes).
- lambda_aug * KL(Q(c | x) || Q(c | x shifted by a pixel)): the same prediction for an
  image moved by one pixel (`shift_one_pixel`; IMSAT's self-augmented training). It trains Q.
The digits suite uses them (suites/digits.yaml; README "InfoGAN" for what each gives).

Networks are DCGAN's (layers.py: generator, discriminator; images generated at the power
of two >= their size and cropped); Q is a 4x4 conv on the trunk's 4x4 features, LeakyReLU,
and a linear layer to the categorical logits and a mean and log-std per continuous code.
Adam(2e-4, betas (0.5, 0.999)) for D, Adam(1e-3, same betas) for G and Q, as in the paper's
MNIST setup. One optimizer step = one discriminator update and one generator+Q update.

Codes can be fixed when sampling (`sample_with_codes`, the README's code protocol): the
report's traversal grids and the code_accuracy / code_mi_lb metrics use it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.layers import (
    ConvDiscriminator,
    ConvGenerator,
    batches,
    checkpoint,
    crop_to,
    dcgan_init,
    device_generator,
    load_checkpoint,
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

CONTINUOUS_RANGE = (-1.0, 1.0)


def cluster_loss(logits: torch.Tensor, balance: float = 1.0) -> torch.Tensor:
    """Mean entropy of q(c | x) over the batch less `balance` times the entropy of the
    batch's mean q, in nats: -balance * log K for confident predictions spread evenly over
    K values, 0 for uniform ones (IMSAT's H(Y|X) - mu H(Y), with mu = balance)."""
    q = F.softmax(logits, dim=1)
    marginal = q.mean(0)
    h_each = -(q * F.log_softmax(logits, dim=1)).sum(1).mean()
    return h_each + balance * (marginal * marginal.clamp_min(1e-12).log()).sum()


def shift_one_pixel(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each NCHW image moved by -1, 0 or 1 pixel down and across (drawn per image), the
    uncovered edge filled with the background value -1."""
    n, ch, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    dy, dx = torch.randint(3, (2, n, 1), generator=generator, device=x.device)
    rows = (torch.arange(h, device=x.device) + dy)[:, None, :, None]
    cols = (torch.arange(w, device=x.device) + dx)[:, None, None, :]
    index = (
        torch.arange(n, device=x.device)[:, None, None, None],
        torch.arange(ch, device=x.device)[None, :, None, None],
    )
    return padded[(*index, rows, cols)]


class QHead(nn.Module):
    """Code predictions from the discriminator trunk's (ch, 4, 4) features."""

    def __init__(self, ch: int, categories: int, continuous: int, hidden: int = 128):
        super().__init__()
        self.categories, self.continuous = categories, continuous
        self.net = nn.Sequential(
            nn.Conv2d(ch, hidden, 4),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(hidden, categories + 2 * continuous),
        )

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(categorical logits, continuous means, continuous log-stds)."""
        out = self.net(h)
        k, c = self.categories, self.continuous
        return out[:, :k], out[:, k : k + c], out[:, k + c :].clamp(-5.0, 2.0)


@register_model("infogan")
class InfoGAN:
    """InfoGAN (images): DCGAN plus a categorical code of `categories` values and
    `continuous` uniform codes, recovered by a Q head on the discriminator trunk.

    Options: z_dim=16 (noise), categories=10, continuous=2, lambda_cat=2.0, lambda_cont=0.05
    (weights of the mutual-information terms), lambda_real=0.0, balance=4.0 and
    lambda_aug=0.0 (Q clusters real images; module docstring), width=32, batch_size=64,
    lr_d=2e-4, lr_g=1e-3, device=None (cuda if available)."""

    nfe = 1  # one network evaluation per sample

    def __init__(
        self,
        shape: tuple[int, ...],
        kind: str = "images",
        *,
        z_dim: int = 16,
        categories: int = 10,
        continuous: int = 2,
        lambda_cat: float = 2.0,
        lambda_cont: float = 0.05,
        lambda_real: float = 0.0,
        lambda_aug: float = 0.0,
        balance: float = 4.0,
        width: int = 32,
        batch_size: int = 64,
        lr_d: float = 2e-4,
        lr_g: float = 1e-3,
        device: str | None = None,
    ):
        if kind != "images":
            raise UserError("infogan: models images only, not point datasets")
        if categories < 1 or continuous < 0:
            raise UserError(
                f"infogan: categories must be at least 1 and continuous at least 0, "
                f"got {categories} and {continuous}"
            )
        lambdas = {
            "lambda_cat": lambda_cat,
            "lambda_cont": lambda_cont,
            "lambda_real": lambda_real,
            "lambda_aug": lambda_aug,
            "balance": balance,
        }
        negative = [f"{name} {value}" for name, value in lambdas.items() if value < 0]
        if negative:
            raise UserError(f"infogan: loss weights must be at least 0, got {', '.join(negative)}")
        self.shape, self.kind = tuple(shape), kind
        self.device = resolve_device(device)
        self.batch_size, self.lr_d, self.lr_g = batch_size, lr_d, lr_g
        self.lambda_cat, self.lambda_cont = lambda_cat, lambda_cont
        self.lambda_real, self.lambda_aug, self.balance = lambda_real, lambda_aug, balance
        self.config = {
            "z_dim": z_dim,
            "categories": categories,
            "continuous": continuous,
            "width": width,
        }
        self.size = pow2_size(max(self.shape[1:]))
        self._build(seed=0)

    # the code protocol (README, "Models with codes")
    @property
    def categorical_codes(self) -> int:
        return self.config["categories"]

    @property
    def continuous_codes(self) -> int:
        return self.config["continuous"]

    continuous_range = CONTINUOUS_RANGE

    def _build(self, seed: int) -> None:
        c = self.config
        in_dim = c["z_dim"] + c["categories"] + c["continuous"]
        with seeded(seed):
            self.G = ConvGenerator(in_dim, self.shape[0], self.size, c["width"])
            self.D = ConvDiscriminator(self.shape[0], self.size, c["width"], batch_norm=True)
            trunk_ch = self.D.net[-1].in_channels
            self.Q = QHead(trunk_ch, c["categories"], c["continuous"])
            for m in (self.G, self.D, self.Q):
                dcgan_init(m)
        for m in (self.G, self.D, self.Q):
            m.to(self.device)

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.D.net[:-1](pad_to(x, self.size, self.size, value=-1.0))

    def _generate(self, z: torch.Tensor, cat: torch.Tensor, cont: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(cat, self.config["categories"]).to(z.dtype)
        return crop_to(self.G(torch.cat([z, onehot, cont], dim=1)), *self.shape[1:])

    def _draw_codes(self, n: int, draw_int, draw_uniform) -> tuple[torch.Tensor, torch.Tensor]:
        cat = draw_int(n)
        lo, hi = CONTINUOUS_RANGE
        cont = lo + (hi - lo) * draw_uniform((n, self.config["continuous"]))
        return cat, cont

    def info_loss(
        self, h: torch.Tensor, cat: torch.Tensor, cont: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(categorical cross-entropy, continuous Gaussian NLL) of the codes under Q, in
        nats per example."""
        logits, mean, log_std = self.Q(h)
        ce = F.cross_entropy(logits, cat)
        nll = (log_std + 0.5 * ((cont - mean) / log_std.exp()) ** 2).sum(1).mean()
        return ce, nll

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        self._build(seed)
        betas = (0.5, 0.999)
        opt_d = torch.optim.Adam(self.D.parameters(), lr=self.lr_d, betas=betas)
        opt_g = torch.optim.Adam(
            [*self.G.parameters(), *self.Q.parameters()], lr=self.lr_g, betas=betas
        )
        gen = device_generator(seed, self.device)
        stream = batches(data.train.x, self.batch_size, seed)
        c = self.config
        for m in (self.G, self.D, self.Q):
            m.train()

        def step() -> dict[str, float]:
            real = to_signed(next(stream).to(self.device))
            n = len(real)
            z = torch.randn((n, c["z_dim"]), generator=gen, device=self.device)
            cat, cont = self._draw_codes(
                n,
                lambda m: torch.randint(c["categories"], (m,), generator=gen, device=self.device),
                lambda s: torch.rand(s, generator=gen, device=self.device),
            )
            fake = self._generate(z, cat, cont)
            h_real = self._trunk(real)
            d_real = self.D.net[-1](h_real).flatten()
            d_fake = self.D.net[-1](self._trunk(fake.detach())).flatten()
            loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            h = self._trunk(fake)
            loss_gan = F.softplus(-self.D.net[-1](h).flatten()).mean()
            ce, nll = self.info_loss(h, cat, cont)
            loss_g = loss_gan + self.lambda_cat * ce + self.lambda_cont * nll
            logged = {}
            if self.lambda_real or self.lambda_aug:
                logits_real = self.Q(h_real.detach())[0]
                clustered = cluster_loss(logits_real, self.balance)
                loss_g = loss_g + self.lambda_real * clustered
                logged["loss_info_real"] = clustered.item()
            if self.lambda_aug:
                with torch.no_grad():
                    h_shifted = self._trunk(shift_one_pixel(real, gen))
                kl = F.kl_div(
                    F.log_softmax(self.Q(h_shifted)[0], dim=1),
                    F.log_softmax(logits_real.detach(), dim=1),
                    reduction="batchmean",
                    log_target=True,
                )
                loss_g = loss_g + self.lambda_aug * kl
                logged["loss_info_shift"] = kl.item()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            return {
                "loss": loss_d.item(),
                "loss_d": loss_d.item(),
                "loss_g": loss_gan.item(),
                "loss_info_cat": ce.item(),
                "loss_info_cont": nll.item(),
                **logged,
            }

        spent = train_loop(step, budget, progress)
        for m in (self.G, self.D, self.Q):
            m.eval()
        return spent

    @torch.inference_mode()
    def sample_with_codes(
        self,
        n: int,
        *,
        categorical: torch.Tensor | None = None,
        continuous: torch.Tensor | None = None,
        generator: torch.Generator,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """n uint8 images; the codes given (int64 (n,) categorical, float (n, continuous)
        in continuous_range) are used as they are, the others and the noise are drawn."""
        self.G.eval()
        c = self.config
        out = []
        for i in range(0, n, batch_size):
            m = min(batch_size, n - i)
            z = randn((m, c["z_dim"]), generator, self.device)
            cat, cont = self._draw_codes(
                m,
                lambda k: torch.randint(c["categories"], (k,), generator=generator).to(self.device),
                lambda s: rand(s, generator, self.device),
            )
            if categorical is not None:
                cat = categorical[i : i + m].to(self.device)
            if continuous is not None:
                cont = continuous[i : i + m].to(self.device, torch.float32)
            out.append(self._generate(z, cat, cont))
        return to_uint8(torch.cat(out))

    def sample(self, n: int, *, generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
        return self.sample_with_codes(n, generator=generator, batch_size=batch_size)

    def state_dict(self) -> dict:
        return checkpoint(self.config, self._checkpointed())

    def load_state_dict(self, sd: dict) -> None:
        load_checkpoint(sd, self.config, "infogan", self._checkpointed())

    def _checkpointed(self) -> dict:
        return {"G": self.G, "D": self.D, "Q": self.Q}
