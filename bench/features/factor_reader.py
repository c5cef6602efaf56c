"""The factor reader of a dataset whose images are its whole factor grid (`shapes`): an
image's factors are those of the dataset image nearest to it in pixel L2 distance.

`shapes` draws every combination of its factors exactly once (1,944 images, pairwise at
least 353.7 gray levels apart in L2), so this lookup reads every image the dataset's
drawing function makes exactly: 100% on every factor (shape, scale, orientation, x, y),
which a learned factor classifier would only approach. For an image off the grid (a
generator's sample) it returns the factors of the closest grid image, the maximum-likelihood
reading under isotropic Gaussian pixel noise. The squared distances are sums of products of
integers below 2**53, exact in float64 whatever the summation order, so the reading is the
same on every machine, with no weights file to pin; ties go to the first image in the
dataset's order (train, then test).
"""

from __future__ import annotations

import numpy as np
import torch

from bench.data import ImageDataset
from bench.errors import UserError

# datasets whose images are exactly their whole factor grid, once each
FULL_GRID_DATASETS = frozenset({"shapes"})


class FactorReader:
    """Nearest-grid-image factor reader (module docstring)."""

    def __init__(self, data: ImageDataset):
        if data.name not in FULL_GRID_DATASETS:
            grids = ", ".join(sorted(FULL_GRID_DATASETS))
            raise UserError(
                f"no factor reader for {data.name!r}: generated images' factors are read only "
                f"on datasets that are their whole factor grid ({grids})"
            )
        images = torch.cat([data.train.x, data.test.x]).flatten(1)
        self.templates = images.numpy().astype(np.float64)
        self.template_sq = (self.templates**2).sum(1)
        self.factors = np.concatenate([data.meta["factors_train"], data.meta["factors_test"]])

    def nearest(self, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
        """Index into the grid of each uint8 NCHW image's nearest grid image."""
        flat = images.flatten(1).numpy().astype(np.float64)
        if flat.shape[1] != self.templates.shape[1]:
            raise UserError(
                f"factor reader: images of {flat.shape[1]} values each, the grid's have "
                f"{self.templates.shape[1]}"
            )
        out = []
        for i in range(0, len(flat), batch_size):
            x = flat[i : i + batch_size]
            # ||x||^2 is the same for every template, so it does not change the argmin
            out.append(np.argmin(self.template_sq[None, :] - 2.0 * x @ self.templates.T, 1))
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def read(self, images: torch.Tensor) -> np.ndarray:
        """(n, factors) int64 factor indices of uint8 NCHW images."""
        return self.factors[self.nearest(images)]
