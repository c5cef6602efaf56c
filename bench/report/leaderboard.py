"""Job runs -> one leaderboard table per (suite, dataset): a row per model, mean and std
across seeds for every metric, with each metric's direction and its best value."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.metrics import direction

RUN_COLUMNS_PREFIXES = ("tag.", "param.")
RUN_COLUMNS = {"run_id", "status", "suite", "start_time", "artifact_uri"}


@dataclass
class Leaderboard:
    suite: str
    dataset: str
    table: pd.DataFrame  # index: model; columns: (metric, "mean"|"std"), plus info columns
    metrics: list[str]
    best: dict[str, str]  # metric -> model label with the best mean among learned models
    sample_runs: dict[str, str] = field(default_factory=dict)  # model -> run id (first seed)
    failures: list[dict] = field(default_factory=list)


def metric_columns(runs: pd.DataFrame) -> list[str]:
    cols = [
        c
        for c in runs.columns
        if c not in RUN_COLUMNS and not c.startswith(RUN_COLUMNS_PREFIXES) and c != "train_loss"
    ]
    return sorted(cols, key=_metric_order)


def _metric_order(name: str) -> tuple[int, str]:
    order = [
        "fid_",
        "fd_",
        "fdinf_",
        "kid_",
        "precision_",
        "recall_",
        "density_",
        "coverage_",
        "classes_hit",
        "class_",
        "modes_",
        "stacked_",
        "copy_",
        "authpct_",
        "ct_",
        "nn_gap_",
        "classifier_score",
        "inception_score",
        "bits_per_dim",
        "throughput_",
    ]
    for i, prefix in enumerate(order):
        if name.startswith(prefix):
            return i, name
    return len(order), name


def latest_per_job(runs: pd.DataFrame) -> pd.DataFrame:
    """The newest run per (suite, dataset, model, seed): reruns replace older results."""
    keys = ["suite", "tag.genbench.dataset", "tag.genbench.model", "tag.genbench.seed"]
    return runs.sort_values("start_time").groupby(keys, as_index=False).tail(1)


def build_leaderboards(runs: pd.DataFrame) -> list[Leaderboard]:
    if runs.empty:
        return []
    runs = latest_per_job(runs)
    boards = []
    for (suite, dataset), group in runs.groupby(["suite", "tag.genbench.dataset"], sort=True):
        finished = group[group["status"] == "FINISHED"]
        failed = group[group["status"] == "FAILED"]
        failures = [
            {
                "model": r["tag.genbench.model"],
                "seed": r["tag.genbench.seed"],
                "error": r.get("tag.genbench.error", "unknown error"),
            }
            for _, r in failed.iterrows()
        ]
        boards.append(_board(suite, dataset, finished, failures))
    return boards


def _board(suite: str, dataset: str, runs: pd.DataFrame, failures: list[dict]) -> Leaderboard:
    metrics = [m for m in metric_columns(runs) if runs[m].notna().any()]
    rows = {}
    samples = {}
    for model, g in runs.groupby("tag.genbench.model", sort=False):
        row = {
            ("reference", ""): g["tag.genbench.reference"].iloc[0] == "true",
            ("seeds", ""): len(g),
            ("budget_steps", ""): _first_number(g, "tag.budget_spent_steps"),
        }
        for m in metrics:
            vals = g[m].dropna().to_numpy(dtype=float)
            row[(m, "mean")] = vals.mean() if len(vals) else np.nan
            row[(m, "std")] = vals.std(ddof=1) if len(vals) > 1 else np.nan
        rows[model] = row
        samples[model] = g.sort_values("tag.genbench.seed")["run_id"].iloc[0]
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    best = best_models(table, metrics)
    table = sort_rows(table, metrics)
    return Leaderboard(suite, dataset, table, metrics, best, samples, failures)


def _first_number(g: pd.DataFrame, col: str) -> float:
    if col not in g:
        return np.nan
    return pd.to_numeric(g[col], errors="coerce").mean()


def best_models(table: pd.DataFrame, metrics: list[str]) -> dict[str, str]:
    """Best mean per metric among learned models (references are the floor and ceiling);
    among all rows when there are only references."""
    learned = table[~table[("reference", "")].astype(bool)]
    pool = learned if len(learned) else table
    best = {}
    for m in metrics:
        d = direction(m)
        col = pool[(m, "mean")].dropna()
        if d is None or col.empty:
            continue
        if d == "lower":
            best[m] = col.idxmin()
        elif d == "higher":
            best[m] = col.idxmax()
        else:
            target = 0.0 if d.endswith("0") else 1.0
            best[m] = (col - target).abs().idxmin()
    return best


def primary_metric(metrics: list[str]) -> str | None:
    """The first quality metric with a direction (FID/FD first in the column order)."""
    return next((m for m in metrics if direction(m) in ("lower", "higher")), None)


def sort_rows(table: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Learned models ranked by the primary metric, then the references."""
    primary = primary_metric(metrics)
    ref = table[("reference", "")].astype(bool)
    if primary is None:
        return pd.concat([table[~ref], table[ref]])
    asc = direction(primary) == "lower"
    key = (primary, "mean")
    return pd.concat(
        [
            table[~ref].sort_values(key, ascending=asc),
            table[ref].sort_values(key, ascending=asc),
        ]
    )
