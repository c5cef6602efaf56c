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
from bench.metrics import column_kind, column_order, direction, rankable, shown
from bench.record import JobRecord
from bench.study.hype import below_minimum, cell_parts, split_study

RUN_COLUMNS = [
    "run_id", "status", "suite", "rank_by", "start_time", "dataset", "model", "seed",
    "reference", "source", "fit_key", "budget_spent_steps", "budget_spent_seconds",
    "steps_from", "error", "sample_options", "sweep_options",
]  # fmt: skip
PROVENANCE = "prov."
OPTION = "option."  # the suite entry's model options, as its params record them (strings)


def records_frame(records: list[JobRecord]) -> pd.DataFrame:
    """One row per job record: its run fields, provenance (prefixed `prov.`), model options
    (`option.`) and metrics."""
    rows = []
    for r in records:
        row = {c: getattr(r, c) for c in RUN_COLUMNS}
        row["rank_by"] = ",".join(r.rank_by)
        row.update({f"{PROVENANCE}{k}": v for k, v in r.provenance.items()})
        row.update({k: v for k, v in r.params.items() if k.startswith(OPTION)})
        row.update(r.metrics)
        rows.append(row)
    return pd.DataFrame(rows)


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
        g = self.runs[self.runs["model"] == model]
        return g.sort_values("seed")["run_id"].iloc[0]


def by_trained_model(board: Leaderboard) -> dict[tuple[str, ...], str]:
    """Rows that share one trained model (e.g. a DDIM step sweep) -> the first of them."""
    groups: dict[str, list[str]] = {}
    for model in board.table.index:
        run = board.runs[board.runs["run_id"] == board.first_run(model)].iloc[0]
        fit = run["fit_key"]
        shared = isinstance(fit, str) and fit != "none"  # "none": a samples file, no training
        groups.setdefault(fit if shared else model, []).append(model)
    return {tuple(models): models[0] for models in groups.values()}


def metric_columns(runs: pd.DataFrame) -> list[str]:
    cols = [
        c for c in runs.columns if c not in RUN_COLUMNS and not c.startswith((PROVENANCE, OPTION))
    ]
    return sorted((c for c in cols if shown(c)), key=column_order)


def latest_per_job(runs: pd.DataFrame) -> pd.DataFrame:
    """The newest run per (suite, dataset, model, seed): reruns replace older results."""
    keys = ["suite", "dataset", "model", "seed"]
    return runs.sort_values("start_time").groupby(keys, as_index=False).tail(1)


def build_leaderboards(
    records: list[JobRecord], rank_by: list[str] | None = None
) -> list[Leaderboard]:
    """One board per (suite, dataset). `rank_by` overrides the suite's own ranking (its
    `rank_by`, read from the MLflow experiment), which overrides the first FD/FID column."""
    runs = records_frame(records)
    if runs.empty:
        return []
    runs = latest_per_job(runs)
    boards = []
    for (suite, dataset), group in runs.groupby(["suite", "dataset"], sort=True):
        finished = group[group["status"] == "FINISHED"]
        failures = [
            {
                "model": r["model"],
                "seed": r["seed"],
                "error": r["error"] or "unknown error",
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
    for model, g in runs.groupby("model", sort=False):
        row = {
            ("reference", ""): bool(g["reference"].iloc[0]),
            ("seeds", ""): len(g),
            ("budget_steps", ""): _mean(g, "budget_spent_steps"),
            ("train_seconds", ""): _mean(g, "budget_spent_seconds"),
            ("disturbed", ""): _any_disturbed(g),
            ("source", ""): g["source"].iloc[0],  # one label is one suite entry: one source
            ("steps_unknown", ""): bool((g["steps_from"] == "unknown").any()),
        }
        for m in metrics:
            for stat, v in summarize(g[m].dropna().to_numpy(dtype=float)).items():
                row[(m, stat)] = v
            row.update(study_parts(g, m))
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


def study_parts(g: pd.DataFrame, metric: str) -> dict[tuple[str, str], float | bool]:
    """A human-study score's interval and counts (one job run holds them: the study's),
    and whether they fall below the paper's minimum."""
    parts = {
        (metric, part): _mean(g, c) if c in g else np.nan for part, c in cell_parts(metric).items()
    }
    if not parts:
        return {}
    raters, judgements = parts[(metric, "raters")], parts[(metric, "judgements")]
    parts[(metric, "below_minimum")] = below_minimum(split_study(metric)[0], raters, judgements)
    return parts


def suite_rank_by(runs: pd.DataFrame) -> list[str]:
    """The ranking the suite file asked for, as the last `genbench run` recorded it."""
    if runs.empty:
        return []
    return [m for m in str(runs["rank_by"].iloc[0]).split(",") if m]


def _any_disturbed(g: pd.DataFrame) -> bool:
    """A throughput figure of any seed was measured while the machine was busy."""
    flags = [c for c in g.columns if column_kind(c) == "flag"]
    return bool((g[flags].fillna(0) > 0).to_numpy().any()) if flags else False


def _mean(g: pd.DataFrame, col: str) -> float:
    return pd.to_numeric(g[col], errors="coerce").mean()


def best_models(table: pd.DataFrame, metrics: list[str]) -> dict[str, set[str]]:
    """Best mean per metric among learned models (references are the floor and ceiling);
    among all rows when there are only references. Every model whose mean ties the best as
    printed (4 significant digits) is best: which of equal numbers came first means nothing."""
    learned = table[~table[("reference", "")].astype(bool)]
    pool = learned if len(learned) else table
    best = {}
    for m in metrics:
        d = direction(m)
        col = pool[(m, "mean")].dropna()
        if d is None or col.empty:
            continue
        if d not in ("lower", "higher"):
            col = (col - (0.0 if d.endswith("0") else 1.0)).abs()
        printed = col.map(lambda v: float(f"{v:.4g}"))
        top = printed.max() if d == "higher" else printed.min()
        best[m] = set(printed.index[printed == top])
    return best


def primary_metric(metrics: list[str]) -> str | None:
    """The first column that can rank (FID/FD come first in the column order)."""
    return next((m for m in metrics if rankable(m)), None)


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
