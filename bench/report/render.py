"""Leaderboards -> leaderboard.md, leaderboard.csv and a self-contained leaderboard.html
(bench/report/page.py: images embedded, no network), all rebuilt from the MLflow store
alone; the cells, headers and legends both formats share."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.cache import atomic_write_bytes
from bench.metrics import column_kind, direction
from bench.record import USER_INPUTS, Store
from bench.report.conditional import (
    OptionSweep,
    option_sweeps,
    per_class_metrics,
    worst_class,
)
from bench.report.leaderboard import (
    PROVENANCE,
    Leaderboard,
    build_leaderboards,
)
from bench.report.small_n import small_n_lines
from bench.report.training_curves import Curves, training_curves
from bench.study.hype import (
    MIN_INF_JUDGEMENTS,
    MIN_RATERS,
    OVERALL,
    cell_parts,
    split_study,
)

ARROWS = {"lower": "↓", "higher": "↑", "closer to 0": "→0", "closer to 1": "→1"}
LEGEND = (
    "Mean over training seeds ± the 95% t-interval half-width (3+ seeds) or ± the std "
    "(2 seeds). Arrows: each metric's direction. Bold: best learned model per column (every "
    "model that ties it as printed). "
    "Learned models are ranked by the primary metric; references (copier, pixel-gaussian, "
    "...) bound the scale from above and below and are not ranked. †: a throughput figure "
    "measured while other processes kept the CPU busy (or while their load could not be "
    "measured) or whose repeats spread more than 10% "
    "(re-measure with genbench throughput on a quiet machine). Steps: optimizer steps "
    'spent on the suite\'s budget; "checkpoint" and "samples file" rows were trained '
    'elsewhere, on a budget genbench did not set; "unknown": the model\'s fit neither '
    "returned Spent(steps=...) nor reported steps through progress."
)
REFERENCES_LEGEND = (
    "References are not ranked and never bold: they bound the scale (a copier of the "
    "training set scores near the best possible value of most columns, a pixel-wise "
    "Gaussian near the worst), so the best of them says nothing about the models; read "
    "each learned model's value against theirs."
)
HYPE_LEGEND = (
    "HYPE (human study): each column carries the study it came from (`genbench study "
    "--name`; in MLflow `hype_inf/NAME`); a HYPE column without a study was written before "
    "genbench named them. A cell: the score [95% bootstrap interval], the overall score "
    "(hype_inf, hype_time_ms) with its study's raters and judgements (HYPE-time: and the "
    "trials excluded for a missed exposure). ‡: fewer raters than the HYPE "
    f"paper's {MIN_RATERS} (HYPE-∞: or fewer judgements than its {MIN_INF_JUDGEMENTS:,}) per "
    "model: the interval understates how uncertain the score is."
)
COUNT_WORDS = {
    "raters": ("rater", "raters"),
    "judgements": ("judgement", "judgements"),
    "excluded": ("excluded", "excluded"),
}
PROVENANCE_FIRST = [
    "suite_version", "git_commit", "device", "device_name", "torch_cuda", "python",
    "dataset_hash",
]  # fmt: skip


def fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.3e}"
    return f"{x:.4g}"


def cell(board: Leaderboard, model: str, metric: str) -> str:
    t = board.table.loc[model]
    if (metric, "lo") in t.index:
        return study_cell(t, metric)
    mean, std, ci = t[(metric, "mean")], t[(metric, "std")], t[(metric, "ci95")]
    spread = ci if not math.isnan(ci) else std
    text = fmt(mean) if math.isnan(spread) else f"{fmt(mean)} ± {fmt(spread)}"
    if column_kind(metric) == "speed" and t.get(("disturbed", ""), False):
        text += " †"
    return text


def study_cell(t: pd.Series, metric: str) -> str:
    """A human-study score: `value [lo, hi]`, the study's counts beside its overall score
    (`(raters, judgements)`), ‡ below the paper's minimum."""
    value, lo, hi = (t[(metric, part)] for part in ("mean", "lo", "hi"))
    if math.isnan(value):
        return "–"
    text = fmt(value) if math.isnan(lo) else f"{fmt(value)} [{fmt(lo)}, {fmt(hi)}]"
    counts = [
        f"{n:.0f} {words[int(n != 1)]}"
        for part, words in COUNT_WORDS.items()
        if not math.isnan(n := t[(metric, part)])
    ]
    if counts and split_study(metric)[0] in OVERALL:
        text += f" ({', '.join(counts)})"
    return text + (" ‡" if t[(metric, "below_minimum")] else "")


def header(metric: str, rank_by: Sequence[str] = ()) -> str:
    d = direction(metric)
    score, study = split_study(metric)
    text = f"{score} {ARROWS[d]}" if d else score
    if study is not None:
        text += f" (study {study})"
    if metric not in rank_by:
        return text
    return text + (" (primary)" if metric == rank_by[0] else " (tie-break)")


SOURCE_TEXT = {
    "checkpoint": "checkpoint",
    "samples-file": "samples file",
    "pretrained": "pretrained",
}


def steps_text(steps: float, source: str = "trained", unknown: bool = False) -> str:
    """Optimizer steps spent (mean over seeds), as a whole number (10,000 not 1e+04), or
    where the model came from when genbench did not train it."""
    if source in SOURCE_TEXT:
        return SOURCE_TEXT[source]
    if unknown:
        return "unknown"
    return "–" if pd.isna(steps) else f"{round(steps):,}"


def legends(board: Leaderboard) -> list[str]:
    """The legend, and what the board's human-study columns hold when it has some."""
    hype = any(cell_parts(m) for m in board.metrics)
    return [LEGEND, *([HYPE_LEGEND] if hype else [])]


def table_rows(board: Leaderboard, models: list[str]) -> list[dict]:
    rows = []
    for rank, model in enumerate(models, 1):
        t = board.table.loc[model]
        rows.append(
            {
                "model": model,
                "rank": rank,
                "seeds": int(t[("seeds", "")]),
                "budget": steps_text(
                    t[("budget_steps", "")],
                    t.get(("source", ""), "trained"),
                    bool(t.get(("steps_unknown", ""), False)),
                ),
                "cells": {m: cell(board, model, m) for m in board.metrics},
                "best": {m for m in board.metrics if model in board.best.get(m, ())},
            }
        )
    return rows


def _md_table(board: Leaderboard, models: list[str], ranked: bool) -> list[str]:
    head = [
        "rank" if ranked else "",
        "model",
        "seeds",
        "steps",
        *(header(m, board.rank_by) for m in board.metrics),
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table_rows(board, models):
        cells = [f"**{r['cells'][m]}**" if m in r["best"] else r["cells"][m] for m in board.metrics]
        first = str(r["rank"]) if ranked else "ref"
        lines.append(
            "| " + " | ".join([first, r["model"], str(r["seeds"]), r["budget"], *cells]) + " |"
        )
    return lines


def to_markdown(boards: list[Leaderboard], assets: Assets | None = None) -> str:
    parts = []
    for b in boards:
        parts.append(f"## {b.suite} / {b.dataset}\n")
        if b.models:
            parts += _md_table(b, b.models, ranked=True)
        if b.references:
            parts += ["", "References (floor and ceiling):", ""]
            parts += _md_table(b, b.references, ranked=False)
            parts += ["", REFERENCES_LEGEND]
        for text in [*legends(b), *small_n_lines(b, assets)]:
            parts += ["", text]
        for f in b.failures:
            parts.append(f"\n- FAILED: {f['model']} seed {f['seed']}: {f['error']}")
        for sweep in option_sweeps(b):
            parts += ["", f"### {sweep.title}: {', '.join(sweep.models)}", ""]
            parts += _md_rows(*sweep_rows(b, sweep))
            parts += ["", sweep.legend]
        tables = per_class_tables(b, assets.per_class) if assets else []
        for metric, heads, rows in tables:
            parts += ["", f"### Per class: {header(metric)}", ""]
            parts += _md_rows(["class", *heads], rows)
        if tables:
            parts += ["", PER_CLASS_LEGEND.format(mark="bold; red in the HTML report")]
        parts.append("")
    return "\n".join(parts)


def _md_rows(heads: list[str], rows: list[list[tuple[str, bool]]]) -> list[str]:
    """A markdown table; each cell (text, marked) is bold when marked."""
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for row in rows:
        lines.append("| " + " | ".join(f"**{t}**" if bold else t for t, bold in row) + " |")
    return lines


def to_csv(boards: list[Leaderboard]) -> pd.DataFrame:
    frames = []
    for b in boards:
        t = b.table.copy()
        t.columns = [f"{m}_{s}" if s else m for m, s in t.columns]
        t.index.name = "model"
        t = t.reset_index()
        t.insert(0, "dataset", b.dataset)
        t.insert(0, "suite", b.suite)
        frames.append(t)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# -- class-conditional sections ----------------------------------------------------------

PER_CLASS_LEGEND = (
    "Per class, from each model's first seed: a row per class asked for, a column per "
    "model. Marked ({mark}): each model's worst class."
)


def sweep_rows(board: Leaderboard, sweep: OptionSweep) -> tuple[list[str], list[list]]:
    """An option sweep's table: the value (w, psi), model and the sweep metrics, the best
    value per column marked."""
    heads = [sweep.symbol, "model", *(header(m) for m in sweep.metrics)]
    rows = []
    for w, model in zip(sweep.values, sweep.models, strict=True):
        marked = [(cell(board, model, m), sweep.best.get(m) == w) for m in sweep.metrics]
        rows.append([(f"{w:g}", False), (model, False), *marked])
    return heads, rows


def per_class_tables(board: Leaderboard, per_class: dict[tuple, dict]) -> list[tuple]:
    """Per per-class metric: (metric, model columns, rows of (text, is that model's worst
    class)), for the board's models that left a per-class breakdown."""
    found = {
        m: per_class[(board.suite, board.dataset, m)]
        for m in board.table.index
        if (board.suite, board.dataset, m) in per_class
    }
    metrics = list(dict.fromkeys(k for pc in found.values() for k in per_class_metrics(pc)))
    tables = []
    for metric in metrics:
        models = [m for m in found if metric in found[m]]
        classes = list(dict.fromkeys(c for m in models for c in found[m]["classes"]))
        columns = {}
        for m in models:
            values = dict(zip(found[m]["classes"], found[m][metric], strict=True))
            worst = worst_class(found[m]["classes"], found[m][metric], metric)
            columns[m] = [(_number(values.get(c)), c == worst) for c in classes]
        heads = [f"{m} (ref)" if m in board.references else m for m in models]
        rows = [[(str(c), False), *(columns[m][i] for m in models)] for i, c in enumerate(classes)]
        tables.append((metric, heads, rows))
    return tables


def _number(value: float | None) -> str:
    return fmt(float("nan") if value is None else float(value))


# -- HTML ---------------------------------------------------------------------------------


@dataclass
class Assets:
    """Everything the HTML embeds, fetched from MLflow (key: (suite, dataset, model))."""

    samples: dict[tuple, bytes] = field(default_factory=dict)
    neighbours: dict[tuple, bytes] = field(default_factory=dict)
    traversals: dict[tuple, bytes] = field(default_factory=dict)  # bench.traversal
    histograms: dict[tuple, dict] = field(default_factory=dict)
    losses: dict[tuple, list] = field(default_factory=dict)
    throughput: dict[tuple, list] = field(default_factory=dict)  # sweep rows per batch size
    per_class: dict[tuple, dict] = field(default_factory=dict)  # conditional metrics per class
    small_n: dict[tuple, list] = field(default_factory=dict)  # bench.report.small_n
    per_sample: dict[tuple, bytes] = field(default_factory=dict)  # bench.report.per_sample
    curves: dict[tuple, Curves] = field(default_factory=dict)  # (suite, dataset): during fit


def collect_assets(store: Store, boards: list[Leaderboard]) -> Assets:
    assets = Assets()
    for b in boards:
        assets.curves[(b.suite, b.dataset)] = training_curves(store, b)
        for model in b.table.index:
            key = (b.suite, b.dataset, model)
            run_id = b.first_run(model)
            for name, found in (
                ("samples.png", assets.samples),
                ("nearest_neighbours.png", assets.neighbours),
                ("per_sample.png", assets.per_sample),
                ("traversal.png", assets.traversals),
            ):
                data = store.artifact(run_id, name)
                if data is not None:
                    found[key] = data
            data = store.artifact(run_id, "report_data.json")
            if data is not None:
                report_data = json.loads(data)
                assets.histograms[key] = report_data.get("class_histogram")
                if "throughput" in report_data:
                    assets.throughput[key] = report_data["throughput"]
                if report_data.get("per_class"):
                    assets.per_class[key] = report_data["per_class"]
                assets.small_n[key] = report_data.get("small_n_warnings", [])
            history = store.loss_history(run_id)
            if history:
                assets.losses[key] = history
    return assets


def provenance(board: Leaderboard) -> dict[str, str]:
    out = {}
    runs = board.runs
    rest = sorted(c.removeprefix(PROVENANCE) for c in runs.columns if c.startswith(PROVENANCE))
    for tag in dict.fromkeys(PROVENANCE_FIRST + rest):
        col = f"{PROVENANCE}{tag}"
        if col in runs:
            if tag in USER_INPUTS:  # each model's own: say whose
                pairs = runs[["model", col]].dropna().astype(str).drop_duplicates()
                values = sorted(f"{m}: {v}" for m, v in pairs.itertuples(index=False) if v)
            else:
                values = sorted({str(v) for v in runs[col].dropna()})
            if values:
                out[tag] = ", ".join(values)
    return out


def write_report(
    store: Store, out_dir: Path, suite: str | None = None, rank_by: list[str] | None = None
) -> list[Leaderboard]:
    """Rebuild the leaderboard from MLflow and write .md/.csv/.html into out_dir (nothing
    when the store holds no job runs)."""
    boards = build_leaderboards(store.records(suite), rank_by)
    if not boards:  # nothing to show: the files of an earlier report stay as they were
        return boards
    assets = collect_assets(store, boards)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Each file is replaced whole: a symlink planted at its name is replaced, not followed.
    atomic_write_bytes(out_dir / "leaderboard.md", to_markdown(boards, assets).encode())
    atomic_write_bytes(out_dir / "leaderboard.csv", to_csv(boards).to_csv(index=False).encode())
    from bench.report.page import to_html  # page builds on this module's tables

    atomic_write_bytes(out_dir / "leaderboard.html", to_html(boards, assets).encode())
    return boards
