"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
Decoders"): an autoregressive model p(x) = prod_i p(x_i | x_<i) over pixels in raster
order and, within a pixel, over channels (R, then G given R, then B given R and G).

Two stacks remove the blind spot of the original PixelCNN: the vertical stack sees the rows
above (its output is shifted down one row before the horizontal stack uses it), the
horizontal stack sees the pixels to the left in the current row. Layers are gated
(tanh(a) * sigmoid(b)), the horizontal stack is residual. Channel order inside a pixel is
enforced with masks on the horizontal convolution's centre tap: feature maps are split into
C groups, and group c sees image channels < c (mask "A", first layer) or feature groups <= c
(mask "B", later layers and the output head).

Output: a categorical over `levels` values per subpixel (default 256: exact pixels). With
fewer levels, pixel v falls in level floor(v * levels / 256); the likelihood spreads each
level's mass uniformly over its pixel values, so `bits_per_dim(x)` is still an exact NLL of
the 8-bit pixels, and samples show each level's centre value.

Sampling is batched over images and sequential over the H * W * C subpixels, one network
evaluation each (on the rows up to the current one, which is all the output depends on, and
the output head at the current pixel only).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from baselines.layers import (
    batches,
    checkpoint,
    load_checkpoint,
    rand,
    resolve_device,
    seeded,
    train_loop,
)
from bench.data import ImageDataset
from bench.errors import UserError
from bench.models import Budget, Progress, Spent, register_model
from bench.samples import non_finite


def feature_groups(n: int, channels: int) -> torch.Tensor:
    """Which image channel's group each of n feature maps belongs to."""
    return torch.arange(n) * channels // n


def centre_mask(g_out: torch.Tensor, g_in: torch.Tensor, include_own: bool) -> torch.Tensor:
    """(out, in) 0/1 mask for the centre tap: group c may see groups < c (A) or <= c (B)."""
    allowed = g_out[:, None] >= g_in[None, :] if include_own else g_out[:, None] > g_in[None, :]
    return allowed.float()


class MaskedConv2d(nn.Conv2d):
    """A convolution whose weight is multiplied by a fixed mask; causal padding is applied
    by the caller. The mask's last column (the centre tap) carries the channel mask."""

    def __init__(self, cin: int, cout: int, width: int, centre: torch.Tensor):
        super().__init__(cin, cout, (1, width))
        mask = torch.ones(cout, cin, 1, width)
        mask[:, :, 0, -1] = centre
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias)


def gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def down_shift(x: torch.Tensor) -> torch.Tensor:
    """Row i gets row i - 1 (zeros in row 0): vertical features then only see rows above."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


class GatedLayer(nn.Module):
    def __init__(self, cin: int, features: int, channels: int, kernel: int, first: bool):
        super().__init__()
        self.k = kernel // 2
        self.first = first
        g_in = torch.arange(channels) if first else feature_groups(features, channels)
        g_gate = feature_groups(features, channels).repeat(2)  # both halves of the gate
        # vertical: rows i-k..i, columns j-k..j+k (shifted down before reaching horizontal)
        self.vertical = nn.Conv2d(cin, 2 * features, (self.k + 1, kernel))
        # horizontal: columns j-k..j of row i, the centre tap masked A (first) or B
        self.horizontal = MaskedConv2d(
            cin, 2 * features, self.k + 1, centre_mask(g_gate, g_in, include_own=not first)
        )
        self.v_to_h = nn.Conv2d(2 * features, 2 * features, 1)
        g = feature_groups(features, channels)
        self.h_out = MaskedConv2d(features, features, 1, centre_mask(g, g, include_own=True))

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.k
        v_pre = self.vertical(F.pad(v, (k, k, k, 0)))
        h_pre = self.horizontal(F.pad(h, (k, 0, 0, 0))) + self.v_to_h(down_shift(v_pre))
        h_new = self.h_out(gate(h_pre))
        return gate(v_pre), h_new if self.first else h + h_new


class GatedPixelCNN(nn.Module):
    def __init__(
        self, channels: int, levels: int, features: int, layers: int, first_kernel: int, kernel: int
    ):
        super().__init__()
        self.channels, self.levels = channels, levels
        self.layers = nn.ModuleList(
            [GatedLayer(channels, features, channels, first_kernel, first=True)]
            + [
                GatedLayer(features, features, channels, kernel, first=False)
                for _ in range(layers - 1)
            ]
        )
        g = feature_groups(features, channels)
        g_logits = torch.arange(channels).repeat_interleave(levels)
        self.head = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(features, features, 1, centre_mask(g, g, True)),
            nn.ReLU(),
            MaskedConv2d(features, channels * levels, 1, centre_mask(g_logits, g, True)),
        )

    def forward(self, x: torch.Tensor, at: tuple[int, int] | None = None) -> torch.Tensor:
        """x: levels as float in [-1, 1], (B, C, H, W) -> logits (B, C, levels, H, W), or
        only at pixel `at` = (i, j), (B, C, levels), computed from the rows up to i."""
        if at is not None:
            x = x[:, :, : at[0] + 1]
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h)
        if at is not None:
            h = h[:, :, at[0] :, at[1] : at[1] + 1]
        logits = self.head(h)
        B, _, H, W = logits.shape
        logits = logits.view(B, self.channels, self.levels, H, W)
        return logits if at is None else logits[..., 0, 0]


@register_model("pixelcnn")
class PixelCNN:
    """Gated PixelCNN with a categorical over `levels` pixel values.

    Options: levels=256, features=None (feature maps per stack; auto: 24 up to 8 px, else
    64), layers=None (gated layers; auto: 5 up to 8 px, else 12), first_kernel=5, kernel=3,
    batch_size=64, lr=1e-3, grad_clip=1.0, device=None (cuda if available).
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        kind: str = "images",
        *,
        levels: int = 256,
        features: int | None = None,
        layers: int | None = None,
        first_kernel: int = 5,
        kernel: int = 3,
        batch_size: int = 64,
        lr: float = 1e-3,
        grad_clip: float = 1.0,
        device: str | None = None,
    ):
        if kind != "images":
            raise UserError("pixelcnn models images only; use another family for points")
        if not 2 <= levels <= 256:
            raise UserError(f"pixelcnn: levels must be between 2 and 256, not {levels}")
        small = max(shape[1:]) <= 8
        features = features or (24 if small else 64)
        layers = layers or (5 if small else 12)
        if features < shape[0]:
            raise UserError(f"pixelcnn: features ({features}) must be >= channels ({shape[0]})")
        self.shape, self.kind = tuple(shape), kind
        self.device = resolve_device(device)
        self.batch_size, self.lr, self.grad_clip = batch_size, lr, grad_clip
        self.config = {
            "levels": levels,
            "features": features,
            "layers": layers,
            "first_kernel": first_kernel,
            "kernel": kernel,
        }
        self.levels = levels
        # pixel value -> level, and the number of pixel values in each level
        self.level_of = torch.arange(256) * levels // 256
        self.level_size = torch.bincount(self.level_of, minlength=levels).float()
        self.level_value = (
            torch.tensor([(self.level_of == k).nonzero().float().mean() for k in range(levels)])
            .round()
            .to(torch.uint8)
        )
        self._build(seed=0)

    def _build(self, seed: int) -> None:
        c = self.config
        with seeded(seed):
            self.net = GatedPixelCNN(
                self.shape[0],
                c["levels"],
                c["features"],
                c["layers"],
                c["first_kernel"],
                c["kernel"],
            )
        self.net.to(self.device)

    def _to_input(self, levels: torch.Tensor) -> torch.Tensor:
        return levels.float() * (2.0 / (self.levels - 1)) - 1.0

    def _levels(self, x: torch.Tensor) -> torch.Tensor:
        return self.level_of.to(self.device)[x.to(self.device).long()]

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        self._build(seed)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        stream = batches(data.train.x, self.batch_size, seed)
        self.net.train()

        def step() -> dict[str, float]:
            target = self._levels(next(stream))
            logits = self.net(self._to_input(target))
            loss = F.cross_entropy(logits.transpose(1, 2), target)  # nats per subpixel
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
            opt.step()
            return {"loss": loss.item()}

        spent = train_loop(step, budget, progress)
        self.net.eval()
        return spent

    @property
    def nfe(self) -> int:
        return math.prod(self.shape)

    @torch.inference_mode()
    def sample(self, n: int, *, generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
        self.net.eval()
        out = [
            self._sample_batch(min(batch_size, n - i), generator) for i in range(0, n, batch_size)
        ]
        return self.level_value[torch.cat(out).cpu()]

    def _sample_batch(self, m: int, generator: torch.Generator) -> torch.Tensor:
        C, H, W = self.shape
        levels = torch.zeros((m, C, H, W), dtype=torch.long, device=self.device)
        # a draw from NaN logits is an arbitrary level: counted on the device (no sync per
        # pixel), refused at the end
        bad = torch.zeros((), dtype=torch.long, device=self.device)
        for i in range(H):
            for j in range(W):
                for c in range(C):
                    logits = self.net(self._to_input(levels), at=(i, j))[:, c]
                    bad += (~torch.isfinite(logits)).sum()
                    cdf = logits.softmax(dim=1).cumsum(dim=1)
                    u = rand((m, 1), generator, self.device)  # inverse-CDF draw
                    levels[:, c, i, j] = (cdf < u).sum(dim=1).clamp(max=self.levels - 1)
        if bad:
            raise UserError(non_finite("pixelcnn's logits", int(bad), m * C * H * W * self.levels))
        return levels

    @torch.inference_mode()
    def log_prob(self, x: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
        """Exact log p(x) in nats per image for uint8 NCHW x."""
        self.net.eval()
        out = []
        for start in range(0, len(x), batch_size):
            target = self._levels(x[start : start + batch_size])
            logp = F.log_softmax(self.net(self._to_input(target)), dim=2)
            logp = logp.gather(2, target.unsqueeze(2)).squeeze(2)
            logp = logp - self.level_size.to(self.device).log()[target]
            out.append(logp.flatten(1).sum(1).cpu())
        return torch.cat(out)

    def bits_per_dim(self, x: torch.Tensor, *, batch_size: int = 256) -> float:
        """Mean exact NLL over x (uint8 NCHW) in bits per dimension."""
        nats = -self.log_prob(x, batch_size=batch_size)
        return float(nats.mean() / (math.prod(self.shape) * math.log(2)))

    def state_dict(self) -> dict:
        return checkpoint(self.config, self._checkpointed())

    def load_state_dict(self, sd: dict) -> None:
        load_checkpoint(sd, self.config, "pixelcnn", self._checkpointed())

    def _checkpointed(self) -> dict:
        return {"net": self.net}
