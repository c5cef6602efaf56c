"""The per-sample panel of each model (bench.metrics.per_sample's scores): its 16 least and
16 most realistic samples, and the 16 samples closest to a training image, each above that
image. The job draws it (per_sample.png, next to per_sample.json); the report embeds it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from bench.grids import image_grid

if TYPE_CHECKING:
    from PIL import Image

    from bench.report.leaderboard import Leaderboard
    from bench.report.render import Assets

COUNT = 16
CAPTION = (
    "Per-sample scores. Row 1: the {n} least realistic samples, least first; row 2: the {n} "
    "most realistic, most first (realism score of Kynkäänniemi et al. 2019, k = 3, pruned "
    "real manifold, in the suite's first feature space); rows 3 and 4: the {n} samples "
    "closest to a training image in pixel space, closest first, each above that training "
    "image. All scores are in the job's per_sample.json."
)


def panel_rows(scores: dict, count: int = COUNT) -> dict[str, np.ndarray]:
    """Sample indices of each row (and the training indices under the closest ones)."""
    realism = np.asarray(scores["realism"])
    distance = np.asarray(scores["nearest_train_distance_pixels"])
    n = min(count, len(realism))
    order = np.argsort(realism, kind="stable")
    closest = np.argsort(distance, kind="stable")[:n]
    return {
        "least_realistic": order[:n],
        "most_realistic": np.argsort(-realism, kind="stable")[:n],
        "closest": closest,
        "their_training_images": np.asarray(scores["nearest_train_index"])[closest],
    }


def draw_panel(samples: torch.Tensor, train: torch.Tensor, scores: dict) -> Image.Image:
    """The panel of one job's uint8 NCHW samples and training split."""
    rows = panel_rows(scores)
    pick = lambda x, idx: x[torch.as_tensor(idx, dtype=torch.int64)]  # noqa: E731
    tiles = torch.cat(
        [
            pick(samples, rows["least_realistic"]),
            pick(samples, rows["most_realistic"]),
            pick(samples, rows["closest"]),
            pick(train, rows["their_training_images"]),
        ]
    )
    return image_grid(tiles, ncol=len(rows["closest"]))


def section(board: Leaderboard, assets: Assets) -> dict | None:
    """The page section (bench.report.page) of the board's models' panels, with the caption."""
    panels = [
        (m, assets.per_sample[key])
        for m in board.table.index
        if (key := (board.suite, board.dataset, m)) in assets.per_sample
    ]
    return {"caption": CAPTION.format(n=COUNT), "grids": panels} if panels else None
