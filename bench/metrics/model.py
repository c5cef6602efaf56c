"""Metrics of the model itself rather than of its samples: bits per dimension on the test
split and sampling throughput. They receive the model through the scoring context, and
samples-file jobs (no model) skip them."""

from __future__ import annotations

import math

import numpy as np
import torch

from bench.metrics import register_metric
from bench.scoring import ScoringContext


def bits_per_dim(model, x: torch.Tensor, batch_size: int) -> float | None:
    """Mean bits per dimension on `x` from the model's bits_per_dim or log_prob (nats)."""
    fn = getattr(model, "bits_per_dim", None)
    log_prob = getattr(model, "log_prob", None)
    if fn is None and log_prob is None:
        return None
    dims = x[0].numel()
    values = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            if fn is not None:
                v = torch.as_tensor(fn(xb)).float().reshape(-1)
                values.append(v.expand(len(xb)) if v.numel() == 1 else v)
            else:
                nats = torch.as_tensor(log_prob(xb)).float().reshape(-1)
                values.append(-nats / (dims * np.log(2.0)))
    return float(torch.cat([v.cpu() for v in values]).mean())


@register_metric("bits_per_dim", columns={"bits_per_dim": ("lower", 19)}, needs={"images", "model"})
def score_bits_per_dim(ctx: ScoringContext) -> dict[str, float]:
    """Bits per dimension on the test split: exact (PixelCNN, RealNVP) or a bound (VAE,
    DDPM); models without a likelihood skip it."""
    bpd = bits_per_dim(ctx.model, ctx.data.test.x, ctx.batch_size)
    return {} if bpd is None else {"bits_per_dim_test": bpd}


@register_metric(
    "throughput",
    columns={
        "throughput_img_s_": {"direction": "higher", "order": 2, "kind": "speed", "headline": True},
        "throughput_rsd_": (None, 2, False),
        "throughput_load_": (None, 2, False),
        "throughput_disturbed_": {"order": 2, "shown": False, "kind": "flag"},
    },
    needs={"model"},
)
def score_throughput(ctx: ScoringContext) -> dict[str, float]:
    """Sampling images/s at each of the suite's batch sizes (the largest is the column), with
    the spread of the repeats and the other processes' CPU load while they ran; a disturbed
    figure is marked † on the leaderboard."""
    from bench.throughput import sweep

    rows = sweep(
        ctx.model, ctx.device, list(ctx.throughput_batch_sizes), repeats=3, count_flops=False
    )
    largest = rows[-1]
    ctx.artifacts["throughput"] = rows
    at = f"b{int(largest['batch_size'])}_{ctx.device.type}"
    out = {
        f"throughput_img_s_{at}": largest["img_s"],
        f"throughput_disturbed_{at}": float(largest["disturbed"]),
    }
    for key in ("rsd", "load"):
        if not math.isnan(largest[key]):
            out[f"throughput_{key}_{at}"] = largest[key]
    return out
