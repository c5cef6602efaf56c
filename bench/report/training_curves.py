"""The data of the report's metric-against-step plots: each trained job's metrics during
training (suite `eval_every`), read from its MLflow metric histories."""

from __future__ import annotations

from bench.record import Store
from bench.report.leaderboard import PROVENANCE, Leaderboard

Curves = dict[str, dict[str, dict[int, list[tuple[int, float]]]]]
"""column -> model -> seed -> [(step, value)]"""


def training_curves(store: Store, board: Leaderboard) -> Curves:
    """The board's runs that scored themselves during training, by column, model and seed
    (runs without in-training evaluation are not read)."""
    col = f"{PROVENANCE}eval_every"
    if col not in board.runs:
        return {}
    curves: Curves = {}
    for _, run in board.runs[board.runs[col].notna()].iterrows():
        for column, points in store.eval_history(run["run_id"]).items():
            curves.setdefault(column, {}).setdefault(run["model"], {})[int(run["seed"])] = points
    return curves
