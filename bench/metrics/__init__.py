"""Metric functions on arrays and tensors, and the direction table the leaderboard uses.

Each metric's name carries its protocol (feature extractor, n, reference split, k), so
numbers from different protocols never share a column.
"""

from __future__ import annotations

import re

# (pattern matched at the start of a metric name, direction). First match wins.
DIRECTIONS: list[tuple[str, str]] = [
    (r"fid_|fd_|fdinf_", "lower"),
    (r"kid_", "lower"),
    (r"precision_|recall_|density_|coverage_", "higher"),
    (r"copy_fraction_", "lower"),
    (r"authpct_", "higher"),
    (r"ct_", "closer to 0"),
    (r"nn_gap_ratio_", "closer to 1"),
    (r"classes_hit", "higher"),
    (r"class_kl|class_tv", "lower"),
    (r"modes_captured|modes_hq|stacked_modes", "higher"),
    (r"modes_reverse_kl|stacked_kl", "lower"),
    (r"inception_score|classifier_score", "higher"),
    (r"bits_per_dim", "lower"),
    (r"throughput_", "higher"),
    (r"ms_per_img", "lower"),
]


def direction(metric: str) -> str | None:
    """'lower', 'higher', 'closer to 0' / 'closer to 1', or None for informational columns."""
    if metric.endswith("_std") or metric.endswith("_floor"):
        return None
    for pattern, d in DIRECTIONS:
        if re.match(pattern, metric):
            return d
    return None


def check_rank_metric(metric: str) -> None:
    """A leaderboard can be ranked by a metric that is better either lower or higher."""
    if metric.startswith("throughput_") or direction(metric) not in ("lower", "higher"):
        raise ValueError(
            f"{metric!r} cannot rank models: name a quality metric column that is better "
            "lower or higher, e.g. fd_classifier_n1000_train or modes_captured"
        )
