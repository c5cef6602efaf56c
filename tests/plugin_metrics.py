"""A metric defined outside genbench with one registration and nothing else."""

from bench.metrics import register_metric


@register_metric("brightness", columns={"brightness_": "higher"}, needs={"images"})
def brightness(ctx):
    """Mean pixel value of the samples, 0-255 (a test metric)."""
    return {f"brightness_n{ctx.n}": float(ctx.fake.float().mean())}


@register_metric(
    "label_match", columns={"label_match": "higher"}, needs={"images", "labels", "sample_labels"}
)
def label_match(ctx):
    """Share of samples whose brightness band (mean pixel // 20) is the class they were asked
    for (a test metric for class-conditional samples)."""
    band = ctx.fake.float().mean(dim=(1, 2, 3)).div(20).floor().long()
    return {"label_match": float((band == ctx.fake_labels).float().mean())}
