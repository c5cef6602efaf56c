"""What the report shows of sampling sweeps and class-conditional jobs, as plain data:
option sweeps (rows of one trained model that differ only in a numeric sampling option its
model declares in SWEEP_OPTIONS: the guidance scale w, the truncation psi) with the best
value per metric, and the worst class of each per-class breakdown."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from bench.metrics import column, direction
from bench.report.leaderboard import OPTION, Leaderboard, by_trained_model

# Records written before models declared their sweeps (SWEEP_OPTIONS): cddpm's guidance.
OLDER_SWEEPS = {"guidance": "w"}


@dataclass
class OptionSweep:
    option: str  # the sampling option swept (guidance, truncation, ...)
    symbol: str  # how the table and figure name its value (w, psi)
    models: list[str]  # the board rows, in increasing value
    values: list[float]  # their value of the option
    fd: str | None  # the y axis: the board's first FD column
    against: list[str]  # the x axes: conditional accuracy, precision, recall (those present)
    metrics: list[str]  # the sweep table's columns: fd, intra-class FD, then `against`
    best: dict[str, float]  # metric -> the value with the best mean

    @property
    def title(self) -> str:
        return f"{self.option.capitalize()} sweep"

    @property
    def legend(self) -> str:
        s = self.symbol
        return (
            f"One trained model sampled at several values {s} of its sampling option "
            f"{self.option!r}. Bold: the best {s} per column."
        )


def declared_sweeps(run: pd.Series) -> dict[str, str]:
    """The sampling options a run's model declares sweepable (option -> symbol)."""
    text = run.get("sweep_options")
    if not isinstance(text, str):
        return OLDER_SWEEPS
    declared = json.loads(text)
    return {str(k): str(v) for k, v in declared.items()} if isinstance(declared, dict) else {}


def option_value(run: pd.Series, option: str) -> float | None:
    """A run's value of a sampling option: the entry's option, else the one its model
    reported in `sample_options` (a row that left it at the model's default)."""
    value = run.get(f"{OPTION}{option}")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        options = run.get("sample_options")
        value = json.loads(options).get(option) if isinstance(options, str) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def best_value(options: Sequence[float], values: Sequence[float], metric: str) -> float | None:
    """The option value (w, psi) whose value of `metric` is best in its direction (the
    smallest among ties); None when the metric has no direction or no value."""
    d = direction(metric)
    scored = [(v, w) for w, v in zip(options, values, strict=True) if not math.isnan(v)]
    if d is None or not scored:
        return None
    if d == "lower":
        key = lambda vw: (vw[0], vw[1])  # noqa: E731
    elif d == "higher":
        key = lambda vw: (-vw[0], vw[1])  # noqa: E731
    else:
        target = 0.0 if d.endswith("0") else 1.0
        key = lambda vw: (abs(vw[0] - target), vw[1])  # noqa: E731
    return min(scored, key=key)[1]


def sweep_columns(metrics: Sequence[str]) -> tuple[str | None, list[str], list[str]]:
    """(FD column, columns to plot it against, sweep table columns) among a board's: for each
    place in the sweep its columns declare, the board's first column of the lowest rank."""
    places: dict[int, tuple[float, str]] = {}
    for m in metrics:
        col = column(m)
        if col is None or not col.sweep or direction(m) is None:
            continue
        place = int(col.sweep)
        if place not in places or col.sweep < places[place][0]:
            places[place] = (col.sweep, m)
    chosen = {place: m for place, (_, m) in sorted(places.items())}
    fd = chosen.get(1)
    against = [m for place, m in chosen.items() if place >= 3]
    table = ([fd] if fd else []) + ([chosen[2]] if 2 in chosen else []) + against
    return fd, against, table


def option_sweeps(board: Leaderboard) -> list[OptionSweep]:
    """Per trained model and declared sweep option, the rows whose options differ only in
    that option's value, when 2+ distinct values."""
    runs = board.runs.set_index("run_id")
    fd, against, table = sweep_columns(board.metrics)
    sweeps = []
    for models in by_trained_model(board):
        first = runs.loc[board.first_run(models[0])]
        for option, symbol in declared_sweeps(first).items():
            others = [c for c in runs.columns if c.startswith(OPTION) and c != OPTION + option]
            groups: dict[tuple, dict[str, float]] = {}
            for model in models:
                run = runs.loc[board.first_run(model)]
                value = option_value(run, option)
                if value is not None:
                    rest = tuple(str(run[c]) for c in others)  # e.g. the DDIM steps
                    groups.setdefault(rest, {})[model] = value
            for rows in groups.values():
                if len(set(rows.values())) >= 2:
                    sweeps.append(option_sweep(board, option, symbol, rows, fd, against, table))
    return sweeps


def option_sweep(
    board: Leaderboard,
    option: str,
    symbol: str,
    rows: dict[str, float],
    fd: str | None,
    against: list[str],
    table: list[str],
) -> OptionSweep:
    """The sweep of `rows` (board row -> option value), best value per table column."""
    names = sorted(rows, key=lambda m: (rows[m], m))
    values = [rows[m] for m in names]
    best = {}
    for m in table:
        v = best_value(values, [board.table.loc[n, (m, "mean")] for n in names], m)
        if v is not None:
            best[m] = v
    return OptionSweep(option, symbol, names, values, fd, against, table, best)


def per_class_metrics(per_class: dict) -> list[str]:
    """The per-class columns of a `per_class` artifact (everything beside `classes`)."""
    return [k for k in per_class if k != "classes"]


def worst_class(classes: Sequence, values: Sequence[float], metric: str) -> object | None:
    """The class whose value is worst in the metric's direction (the first among ties);
    None when the metric has no direction, no value, or every class scores the same (no
    class fails more than another)."""
    d = direction(metric)
    scored = [(v, i) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    if d is None or len({v for v, _ in scored}) < 2:
        return None
    if d == "lower":
        i = max(scored, key=lambda vi: (vi[0], -vi[1]))[1]
    elif d == "higher":
        i = min(scored)[1]
    else:
        target = 0.0 if d.endswith("0") else 1.0
        i = max(scored, key=lambda vi: (abs(vi[0] - target), -vi[1]))[1]
    return classes[i]
