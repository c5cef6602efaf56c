"""A metric defined outside genbench with one registration and nothing else."""

from bench.metrics import register_metric


@register_metric("brightness", columns={"brightness_": "higher"}, needs={"images"})
def brightness(ctx):
    """Mean pixel value of the samples, 0-255 (a test metric)."""
    return {f"brightness_n{ctx.n}": float(ctx.fake.float().mean())}
