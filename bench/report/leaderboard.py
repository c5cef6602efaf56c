"""Job runs -> one leaderboard per (suite, dataset): a row per model with the mean across
training seeds and its uncertainty (95% t-interval from 3 seeds, else the std), each
metric's direction and best value, learned models ranked by a primary metric and the
sanity references kept apart as the floor and ceiling."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from bench.metrics import direction

RUN_COLUMNS = {"run_id", "status", "suite", "start_time", "artifact_uri"}
HISTORY_METRICS = {"train_loss"}
# Sampling speed sits right after the headline quality metric.
METRIC_ORDER = [
    "fid_", "fd_", "throughput_", "fdinf_", "kid_", "precision_", "recall_", "density_",
    "coverage_", "classes_hit", "class_", "modes_", "stacked_", "copy_", "authpct_", "ct_",
    "nn_gap_", "classifier_score", "inception_score", "bits_per_dim",
]  # fmt: skip


@dataclass
class Leaderboard:
    suite: str
    dataset: str
    table: pd.DataFrame  # index model; columns (metric, mean|std|ci95|n) plus info columns
    metrics: list[str]
    primary: str | None
    best: dict[str, str]  # metric -> best learned model
    runs: pd.DataFrame  # the finished runs behind the table (provenance, artifacts)
    failures: list[dict] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        return [m for m in self.table.index if not self.table.loc[m, ("reference", "")]]

    @property
    def references(self) -> list[str]:
        return [m for m in self.table.index if self.table.loc[m, ("reference", "")]]

    def first_run(self, model: str) -> str:
        g = self.runs[self.runs["tag.genbench.model"] == model]
        return g.sort_values("tag.genbench.seed")["run_id"].iloc[0]


def metric_columns(runs: pd.DataFrame) -> list[str]:
    skip = RUN_COLUMNS | HISTORY_METRICS
    cols = [c for c in runs.columns if c not in skip and not c.startswith(("tag.", "param."))]
    return sorted(cols, key=_metric_order)


def _metric_order(name: str) -> tuple[int, str]:
    for i, prefix in enumerate(METRIC_ORDER):
        if name.startswith(prefix):
            return i, name
    return len(METRIC_ORDER), name


def latest_per_job(runs: pd.DataFrame) -> pd.DataFrame:
    """The newest run per (suite, dataset, model, seed): reruns replace older results."""
    keys = ["suite", "tag.genbench.dataset", "tag.genbench.model", "tag.genbench.seed"]
    return runs.sort_values("start_time").groupby(keys, as_index=False).tail(1)


def build_leaderboards(runs: pd.DataFrame, primary: str | None = None) -> list[Leaderboard]:
    if runs.empty:
        return []
    runs = latest_per_job(runs)
    boards = []
    for (suite, dataset), group in runs.groupby(["suite", "tag.genbench.dataset"], sort=True):
        finished = group[group["status"] == "FINISHED"]
        failures = [
            {
                "model": r["tag.genbench.model"],
                "seed": r["tag.genbench.seed"],
                "error": r.get("tag.genbench.error", "unknown error"),
            }
            for _, r in group[group["status"] == "FAILED"].iterrows()
        ]
        if not finished.empty:
            boards.append(_board(suite, dataset, finished, failures, primary))
        elif failures:
            empty = pd.DataFrame(columns=pd.MultiIndex.from_tuples([("reference", "")]))
            boards.append(Leaderboard(suite, dataset, empty, [], None, {}, finished, failures))
    return boards


def summarize(values: np.ndarray) -> dict[str, float]:
    """Mean, sample std, and the 95% t-interval half-width (from 3 values up)."""
    n = len(values)
    mean = values.mean() if n else np.nan
    std = values.std(ddof=1) if n > 1 else np.nan
    ci = stats.t.ppf(0.975, n - 1) * std / np.sqrt(n) if n >= 3 else np.nan
    return {"mean": mean, "std": std, "ci95": ci, "n": float(n)}


def _board(suite, dataset, runs, failures, primary) -> Leaderboard:
    metrics = [m for m in metric_columns(runs) if runs[m].notna().any()]
    rows = {}
    for model, g in runs.groupby("tag.genbench.model", sort=False):
        row = {
            ("reference", ""): g["tag.genbench.reference"].iloc[0] == "true",
            ("seeds", ""): len(g),
            ("budget_steps", ""): _mean_tag(g, "tag.budget_spent_steps"),
            ("train_seconds", ""): _mean_tag(g, "tag.budget_spent_seconds"),
        }
        for m in metrics:
            for stat, v in summarize(g[m].dropna().to_numpy(dtype=float)).items():
                row[(m, stat)] = v
        rows[model] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    if primary is not None and primary not in metrics:
        from bench.errors import UserError

        raise UserError(
            f"primary metric {primary!r} is not on the {dataset} leaderboard; "
            f"choose one of: {', '.join(metrics)}"
        )
    primary = primary or primary_metric(metrics)
    table = sort_rows(table, primary)
    return Leaderboard(
        suite, dataset, table, metrics, primary, best_models(table, metrics), runs, failures
    )


def _mean_tag(g: pd.DataFrame, col: str) -> float:
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
    """The first quality metric with a direction (FID/FD come first in the column order)."""
    quality = [m for m in metrics if not m.startswith("throughput_")]
    return next((m for m in quality if direction(m) in ("lower", "higher")), None)


def sort_rows(table: pd.DataFrame, primary: str | None) -> pd.DataFrame:
    """Learned models ranked by the primary metric, then the references; ties by name, so the
    order never depends on which run finished first."""
    table = table.sort_index()
    ref = table[("reference", "")].astype(bool)
    if primary is None:
        return pd.concat([table[~ref], table[ref]])
    asc = direction(primary) == "lower"
    key = (primary, "mean")
    return pd.concat(
        [
            table[~ref].sort_values(key, ascending=asc, na_position="last", kind="stable"),
            table[ref].sort_values(key, ascending=asc, na_position="last", kind="stable"),
        ]
    )
