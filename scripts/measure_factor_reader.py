"""Per-factor accuracy of the shapes factor reader (bench/features/factor_reader.py) on the
test split, as drawn and perturbed: Gaussian pixel noise (std 40 and 80 gray levels, seed
0) and Gaussian blur (std 1 and 2 pixels, scipy.ndimage). README's shapes section quotes it.

    python scripts/measure_factor_reader.py
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from bench.data import load_dataset
from bench.data.shapes import FACTOR_NAMES
from bench.features.factor_reader import FactorReader


def to_uint8(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.clip(np.round(x), 0, 255).astype(np.uint8))


def main() -> None:
    data = load_dataset("shapes")
    reader = FactorReader(data)
    x = data.test.x.numpy().astype(np.float64)
    truth = data.meta["factors_test"]
    rng = np.random.default_rng(0)
    cases = {
        "as drawn": x,
        "noise std 40": x + 40 * rng.standard_normal(x.shape),
        "noise std 80": x + 80 * rng.standard_normal(x.shape),
        "blur std 1 px": gaussian_filter(x, sigma=(0, 0, 1, 1)),
        "blur std 2 px": gaussian_filter(x, sigma=(0, 0, 2, 2)),
    }
    print("case", *FACTOR_NAMES, sep=" | ")
    for name, images in cases.items():
        read = reader.read(to_uint8(images))
        accuracy = (read == truth).mean(axis=0)
        print(name, *(f"{a:.3f}" for a in accuracy), sep=" | ")


if __name__ == "__main__":
    main()
