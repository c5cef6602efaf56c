"""What the report shows of class-conditional jobs, as plain data: guidance sweeps (rows of
one trained model that differ only in the guidance scale w) with the best w per metric, and
the worst class of each per-class breakdown."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from bench.metrics import column, direction
from bench.report.leaderboard import OPTION, Leaderboard, by_trained_model

GUIDANCE = f"{OPTION}guidance"


@dataclass
class GuidanceSweep:
    models: list[str]  # the board rows, in increasing w
    guidance: list[float]  # their w
    fd: str | None  # the y axis: the board's first FD column
    against: list[str]  # the x axes: conditional accuracy, precision, recall (those present)
    metrics: list[str]  # the sweep table's columns: fd, intra-class FD, then `against`
    best: dict[str, float]  # metric -> the w with the best mean


def guidance_of(run: pd.Series) -> float | None:
    """A run's guidance scale: its `guidance` option, else the one its model reported in
    `sample_options` (a row that left w at the model's default)."""
    value = run.get(GUIDANCE)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        options = run.get("sample_options")
        value = json.loads(options).get("guidance") if isinstance(options, str) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def best_guidance(guidance: Sequence[float], values: Sequence[float], metric: str) -> float | None:
    """The w whose value of `metric` is best in its direction (the smallest w among ties);
    None when the metric has no direction or no value."""
    d = direction(metric)
    scored = [(v, w) for w, v in zip(guidance, values, strict=True) if not math.isnan(v)]
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


def guidance_sweeps(board: Leaderboard) -> list[GuidanceSweep]:
    """Per trained model, the rows whose options differ only in w, when 2+ distinct w."""
    runs = board.runs.set_index("run_id")
    others = [c for c in runs.columns if c.startswith(OPTION) and c != GUIDANCE]
    fd, against, table = sweep_columns(board.metrics)
    sweeps = []
    for models in by_trained_model(board):
        groups: dict[tuple, dict[str, float]] = {}
        for model in models:
            run = runs.loc[board.first_run(model)]
            w = guidance_of(run)
            if w is not None:
                rest = tuple(str(run[c]) for c in others)  # e.g. the DDIM steps
                groups.setdefault(rest, {})[model] = w
        for rows in groups.values():
            if len(set(rows.values())) < 2:
                continue
            names = sorted(rows, key=lambda m: (rows[m], m))
            ws = [rows[m] for m in names]
            best = {}
            for m in table:
                w = best_guidance(ws, [board.table.loc[n, (m, "mean")] for n in names], m)
                if w is not None:
                    best[m] = w
            sweeps.append(GuidanceSweep(names, ws, fd, against, table, best))
    return sweeps


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
