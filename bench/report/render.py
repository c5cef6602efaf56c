"""Leaderboards -> leaderboard.md, leaderboard.csv and a self-contained leaderboard.html
(images embedded, no network), all rebuilt from the MLflow store alone."""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.cache import atomic_write_bytes
from bench.metrics import column_kind, direction
from bench.record import USER_INPUTS, Store
from bench.report import plots
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
    by_trained_model,
)
from bench.report.per_sample import html_section as per_sample_section
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


def _img(png: bytes, alt: str) -> str:
    src = "data:image/png;base64," + base64.b64encode(png).decode()
    return f'<img src="{src}" alt="{html.escape(alt)}">'


def traversal_section(grids: list[tuple[str, bytes]]) -> list[str]:
    """The latent traversal grids (bench.traversal) of the models that have codes."""
    if not grids:
        return []
    return [
        "<h3>Latent traversals</h3><p>Models with a categorical code: one row per code "
        "value, the first continuous code swept over its range left to right, the noise "
        "fixed. Encoder models (VAE): one row per latent dimension swept from -2.5 to 2.5, "
        "the others at 0.</p><div class='grids'>",
        *(
            f"<figure>{_img(p, 'traversal of ' + m)}<figcaption>{html.escape(m)}</figcaption>"
            "</figure>"
            for m, p in grids
        ),
        "</div>",
    ]


def _html_table(board: Leaderboard, models: list[str], ranked: bool) -> str:
    e = html.escape
    heads = "".join(f"<th>{e(header(m, board.rank_by))}</th>" for m in board.metrics)
    first = "rank" if ranked else ""
    out = [
        f"<div class='scroll'><table class='board'><thead><tr><th>{first}</th><th>model</th>"
        "<th>seeds</th>"
        f"<th>steps</th>{heads}</tr></thead><tbody>"
    ]
    for r in table_rows(board, models):
        tds = "".join(
            f'<td class="best">{e(r["cells"][m])}</td>'
            if m in r["best"]
            else f"<td>{e(r['cells'][m])}</td>"
            for m in board.metrics
        )
        cls = "" if ranked else ' class="reference"'
        label = str(r["rank"]) if ranked else "ref"
        out.append(
            f"<tr{cls}><td>{label}</td><td>{e(r['model'])}</td><td>{r['seeds']}</td>"
            f"<td>{e(r['budget'])}</td>{tds}</tr>"
        )
    out.append("</tbody></table></div>")
    return "".join(out)


def _html_rows(
    heads: list[str], rows: list[list[tuple[str, bool]]], marked: str, css: str = ""
) -> str:
    """A table whose cells (text, marked) get the class `marked` when marked."""
    e = html.escape
    table = f"<table class='{css}'>" if css else "<table>"
    out = [f"<div class='scroll'>{table}<thead><tr>"]
    out += [f"<th>{e(h)}</th>" for h in heads]
    out.append("</tr></thead><tbody>")
    for row in rows:
        tds = "".join(
            f'<td class="{marked}">{e(t)}</td>' if mark else f"<td>{e(t)}</td>" for t, mark in row
        )
        out.append(f"<tr>{tds}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _conditional(board: Leaderboard, assets: Assets) -> list[str]:
    """The option sweeps (figure and table) and the per-class breakdown."""
    e = html.escape
    out = []
    for sweep in option_sweeps(board):
        out.append(f"<h3>{e(sweep.title)}: {e(', '.join(sweep.models))}</h3>")
        if sweep.fd and sweep.against:
            means = board.table.loc[sweep.models]
            png = plots.option_sweep(
                sweep.values,
                means[(sweep.fd, "mean")].to_numpy(float),
                sweep.fd,
                {m: means[(m, "mean")].to_numpy(float) for m in sweep.against},
                sweep.best,
                sweep.symbol,
            )
            out.append(_img(png, f"{sweep.option} sweep"))
        out.append(_html_rows(*sweep_rows(board, sweep), marked="best"))
        out.append(f"<p class='legend'>{e(sweep.legend)}</p>")
    tables = per_class_tables(board, assets.per_class)
    if tables:
        out.append("<h3>Per-class breakdown</h3>")
        for metric, heads, rows in tables:
            out.append(f"<h4>{e(header(metric))}</h4>")
            out.append(_html_rows(["class", *heads], rows, marked="worst", css="per-class"))
        out.append(f"<p class='legend'>{e(PER_CLASS_LEGEND.format(mark='red'))}</p>")
    return out


def _figures(board: Leaderboard, assets: Assets) -> list[str]:
    e = html.escape
    out = []
    key = lambda m: (board.suite, board.dataset, m)  # noqa: E731
    speed = next((m for m in board.metrics if column_kind(m) == "speed"), None)
    quality = board.primary
    if speed and quality and quality != speed:
        t = board.table.dropna(subset=[(speed, "mean"), (quality, "mean")])
        if len(t):
            png = plots.quality_vs_speed(
                list(t.index),
                t[(speed, "mean")],
                t[(quality, "mean")],
                quality,
                speed,
                set(board.references),
            )
            out.append(f"<h3>Quality against sampling speed</h3>{_img(png, 'quality vs speed')}")
    sweeps = {
        m: assets.throughput[key(m)]
        for m in board.table.index
        if key(m) in assets.throughput and m not in board.references
    }
    if any(len(rows) > 1 for rows in sweeps.values()):
        out.append(
            "<h3>Sampling throughput against batch size</h3>"
            "<p>Images per second at each of the suite's throughput batch sizes (the "
            "leaderboard column is the largest).</p>"
            + _img(plots.throughput_vs_batch(sweeps), "throughput vs batch size")
        )
    grids = [(m, assets.samples[key(m)]) for m in board.table.index if key(m) in assets.samples]
    if grids:
        out.append("<h3>Samples</h3><div class='grids'>")
        out += [
            f"<figure>{_img(p, 'samples of ' + m)}<figcaption>{e(m)}</figcaption></figure>"
            for m, p in grids
        ]
        out.append("</div>")
    out += traversal_section(
        [(m, assets.traversals[key(m)]) for m in board.table.index if key(m) in assets.traversals]
    )
    nn = [(m, assets.neighbours[key(m)]) for m in board.table.index if key(m) in assets.neighbours]
    if nn:
        out.append(
            "<h3>Nearest training images</h3><p>Each row: a generated sample, then its "
            "four nearest training images in pixel space. Copies show up as twins."
            "</p><div class='grids'>"
        )
        out += [
            f"<figure>{_img(p, 'neighbours of ' + m)}<figcaption>{e(m)}</figcaption></figure>"
            for m, p in nn
        ]
        out.append("</div>")
    hists = {
        m: assets.histograms[key(m)] for m in board.table.index if assets.histograms.get(key(m))
    }
    if hists:
        out.append(
            "<h3>Class histograms against the training labels</h3>"
            + _img(plots.class_histograms(hists), "class histograms")
        )
    losses = {}
    for models, fit in by_trained_model(board).items():
        if key(fit) in assets.losses:  # one panel per trained model, titled by all its rows
            losses[", ".join(models)] = assets.losses[key(fit)]
    if losses:
        out.append("<h3>Training loss</h3>" + _img(plots.loss_curves(losses), "loss curves"))
    curves = assets.curves.get((board.suite, board.dataset), {})
    if curves:
        out.append("<h3>Metrics during training</h3>")
        out += [
            _img(plots.metric_vs_step(c, runs), f"{c} against step") for c, runs in curves.items()
        ]
    return out


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


def to_html(boards: list[Leaderboard], assets: Assets) -> str:
    e = html.escape
    body = []
    for b in boards:
        body.append(f"<h2>{e(b.suite)} / {e(b.dataset)}</h2>")
        if b.models:
            body.append(_html_table(b, b.models, ranked=True))
        if b.references:
            body.append("<h3>References (floor and ceiling)</h3>")
            body.append(_html_table(b, b.references, ranked=False))
        body += [f"<p class='legend'>{e(text)}</p>" for text in legends(b)]
        body += [f"<p class='small-n'>{e(text)}</p>" for text in small_n_lines(b, assets)]
        for f in b.failures:
            body.append(
                f'<p class="failed">FAILED: {e(f["model"])} seed {e(str(f["seed"]))}: '
                f"{e(f['error'])}</p>"
            )
        body += _conditional(b, assets)
        body += _figures(b, assets)
        body += per_sample_section(b, assets)
        rows = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in provenance(b).items())
        body.append(f"<h3>Provenance</h3><table class='prov'>{rows}</table>")
    return HTML_TEMPLATE.replace("{body}", "\n".join(body))


HTML_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>genbench leaderboard</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1600px}
table{border-collapse:collapse;margin:0.5em 0 1em;font-size:90%}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f4f4f4}
td:nth-child(2),th:nth-child(2){text-align:left}
table.per-class td,table.per-class th{text-align:right}
table.prov td{text-align:left;white-space:normal;font-family:monospace}
td.best{font-weight:bold;background:#e6f4ea}
td.worst{font-weight:bold;background:#fbe3e3;color:#900}
tr.reference td{color:#666;font-style:italic}
.grids{display:flex;flex-wrap:wrap;gap:1em}
.grids img{width:280px}
.scroll{overflow-x:auto;max-width:100%}
table.board :is(th,td):nth-child(-n+2){position:sticky;z-index:1;background:#fff}
table.board th:nth-child(-n+2){background:#f4f4f4}
table.board :is(th,td):first-child{box-sizing:border-box;left:0;width:3.5em;min-width:3.5em}
table.board :is(th,td):nth-child(2){left:3.5em;box-shadow:2px 0 0 #ccc}
figure{margin:0}figcaption{text-align:center;font-size:90%}
img{image-rendering:pixelated;max-width:100%;border:1px solid #ddd}
.legend{color:#555;font-size:90%;max-width:900px}
.failed{color:#b00}
.small-n{color:#8a5300;font-size:90%}
</style></head><body>
<h1>genbench leaderboard</h1>
{body}
</body></html>
"""


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
    html_text = to_html(boards, assets)
    atomic_write_bytes(out_dir / "leaderboard.html", html_text.encode())
    return boards
