"""Latent traversal grids for models with codes (the report's "Latent traversals").

- A model with a categorical code (README "Models with codes"): one row per code value,
  one column per value of the first continuous code swept evenly over its range (with no
  continuous code, the columns are other noise draws). Within a row the noise and the other
  codes are the same draw (every cell is drawn with a generator seeded 0), so the row shows
  what the swept code alone does (the InfoGAN paper's figures).
- An encoder model with `decode(z)` (a VAE): one row per latent dimension, that dimension
  swept over [-SPAN, SPAN] with the others at 0 (beta-VAE's figures).
"""

from __future__ import annotations

import io

import torch

from bench.grids import image_grid

STEPS = 8  # columns
SPAN = 2.5  # latent range of an encoder model's sweep, in prior standard deviations


def code_traversal(model, steps: int = STEPS) -> torch.Tensor:
    k, c = int(model.categorical_codes), int(getattr(model, "continuous_codes", 0) or 0)
    lo, hi = getattr(model, "continuous_range", (-1.0, 1.0))
    cells = []
    for value in range(k):
        for col in range(steps):
            codes = {"categorical": torch.tensor([value])}
            generator = torch.Generator().manual_seed(0 if c else col)
            if c:
                # the other continuous codes at the middle of the range, the first swept
                cont = torch.full((1, c), (lo + hi) / 2)
                cont[0, 0] = lo + (hi - lo) * col / (steps - 1)
                codes["continuous"] = cont
            cells.append(model.sample_with_codes(1, generator=generator, batch_size=1, **codes))
    return torch.cat(cells)


def latent_traversal(model, steps: int = STEPS) -> torch.Tensor:
    dim = int(model.latent_dim)
    sweep = torch.linspace(-SPAN, SPAN, steps)
    z = torch.zeros(dim, steps, dim)
    for i in range(dim):
        z[i, :, i] = sweep
    return model.decode(z.reshape(dim * steps, dim))


def traversal_images(model, steps: int = STEPS) -> torch.Tensor | None:
    """uint8 NCHW images row by row (`steps` per row), or None for a model without codes."""
    if int(getattr(model, "categorical_codes", 0) or 0) > 0 and hasattr(model, "sample_with_codes"):
        return code_traversal(model, steps)
    if all(hasattr(model, a) for a in ("encode", "decode", "latent_dim")):
        return latent_traversal(model, steps)
    return None


def traversal_png(model, steps: int = STEPS) -> bytes | None:
    """The traversal grid as PNG bytes, or None for a model without codes."""
    images = traversal_images(model, steps)
    if images is None:
        return None
    buf = io.BytesIO()
    image_grid(images, ncol=steps).save(buf, format="PNG")
    return buf.getvalue()
