"""Job runs -> one leaderboard per (suite, dataset): a row per model with the mean across
training seeds and its uncertainty (95% t-interval from 3 seeds, else the std), each
metric's direction and best value, learned models ranked by a primary metric and the
sanity references kept apart as the floor and ceiling."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from bench.errors import UserError
from bench.metrics import direction

RUN_COLUMNS = {"run_id", "status", "suite", "rank_by", "start_time", "artifact_uri"}
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
    rank_by: list[str]  # the primary metric, then the tie-breakers
    best: dict[str, str]  # metric -> best learned model
    runs: pd.DataFrame  # the finished runs behind the table (provenance, artifacts)
    failures: list[dict] = field(default_factory=list)

    @property
    def primary(self) -> str | None:
        return self.rank_by[0] if self.rank_by else None

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


def build_leaderboards(runs: pd.DataFrame, rank_by: list[str] | None = None) -> list[Leaderboard]:
    """One board per (suite, dataset). `rank_by` overrides the suite's own ranking (its
    `rank_by`, read from the MLflow experiment), which overrides the first FD/FID column."""
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
            boards.append(_board(suite, dataset, finished, failures, rank_by))
        elif failures:
            empty = pd.DataFrame(columns=pd.MultiIndex.from_tuples([("reference", "")]))
            boards.append(Leaderboard(suite, dataset, empty, [], [], {}, finished, failures))
    for suite, group in runs.groupby("suite"):
        wanted = suite_rank_by(group)
        columns = {m for b in boards if b.suite == suite for m in b.metrics}
        if wanted and not columns & set(wanted):
            raise UserError(
                f"suite {suite}: rank_by {', '.join(wanted)} matches no leaderboard column; "
                f"its columns: {', '.join(sorted(columns))}"
            )
    return boards


def summarize(values: np.ndarray) -> dict[str, float]:
    """Mean, sample std, and the 95% t-interval half-width (from 3 values up)."""
    n = len(values)
    mean = values.mean() if n else np.nan
    std = values.std(ddof=1) if n > 1 else np.nan
    ci = stats.t.ppf(0.975, n - 1) * std / np.sqrt(n) if n >= 3 else np.nan
    return {"mean": mean, "std": std, "ci95": ci, "n": float(n)}


def _board(suite, dataset, runs, failures, rank_by) -> Leaderboard:
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
    if rank_by:
        for m in rank_by:
            if m not in metrics:
                raise UserError(
                    f"--primary {m!r} is not on the {suite}/{dataset} leaderboard; "
                    f"choose from: {', '.join(metrics)}"
                )
    else:  # the suite's rank_by, as far as this dataset has those columns
        rank_by = [m for m in suite_rank_by(runs) if m in metrics]
        rank_by = rank_by or [m for m in [primary_metric(metrics)] if m]
    table = sort_rows(table, rank_by)
    return Leaderboard(
        suite, dataset, table, metrics, rank_by, best_models(table, metrics), runs, failures
    )


def suite_rank_by(runs: pd.DataFrame) -> list[str]:
    """The ranking the suite file asked for, as the last `genbench run` recorded it."""
    if "rank_by" not in runs or runs["rank_by"].isna().all():
        return []
    return [m for m in str(runs["rank_by"].dropna().iloc[0]).split(",") if m]


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


def sort_rows(table: pd.DataFrame, rank_by: list[str]) -> pd.DataFrame:
    """Learned models ranked by the rank_by metrics in turn, then the references; remaining
    ties by name, so the order never depends on which run finished first."""
    table = table.sort_index()
    ref = table[("reference", "")].astype(bool)
    if not rank_by:
        return pd.concat([table[~ref], table[ref]])
    keys = [(m, "mean") for m in rank_by]
    asc = [direction(m) == "lower" for m in rank_by]

    def ranked(t: pd.DataFrame) -> pd.DataFrame:
        return t.sort_values(keys, ascending=asc, na_position="last", kind="stable")

    return pd.concat([ranked(table[~ref]), ranked(table[ref])])
