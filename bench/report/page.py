"""leaderboard.html: the leaderboards rendered through Jinja2 templates (autoescaped, images
embedded, no network).

Each leaderboard is a list of sections. A section is a function (board, assets) -> a dict
for its template, or None when the board has nothing to show there, and a template
`templates/sections/NAME.html` that renders that dict as `s`. The page shows every board's
sections in the order of SECTIONS: a new section (a figure, a table) is one function here
or in its own module, one template, and its place in SECTIONS."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.metrics import column, column_group, column_kind
from bench.report import plots
from bench.report.conditional import option_sweeps
from bench.report.leaderboard import Leaderboard, by_trained_model
from bench.report.per_sample import section as per_sample
from bench.report.render import (
    PER_CLASS_LEGEND,
    REFERENCES_LEGEND,
    Assets,
    header,
    legends,
    per_class_tables,
    provenance,
    sweep_rows,
    table_rows,
)
from bench.report.small_n import small_n_lines

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).parent / "templates"
HEADLINE_MAX = 6  # columns of the headline table, the ranking ones first
OTHER_GROUP = "other"  # columns no metric declares


@dataclass
class Table:
    heads: list[str]
    rows: list[list[tuple[str, str]]]  # cells (text, css class or "")
    row_classes: list[str] = field(default_factory=list)  # per row, "" for none
    css: str = ""


@dataclass(frozen=True)
class Section:
    name: str  # its template: templates/sections/NAME.html
    build: Callable[[Leaderboard, Assets], dict | None]


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _key(board: Leaderboard, model: str) -> tuple[str, str, str]:
    return (board.suite, board.dataset, model)


# -- the leaderboard tables ---------------------------------------------------------------


def mark(best: bool) -> str:
    return "best" if best else ""


def headline_metrics(board: Leaderboard) -> list[str]:
    """The ranking columns, then the board's first column of each column declaration marked
    `headline`, in leaderboard order, at most HEADLINE_MAX."""
    chosen = list(board.rank_by)
    declared = {column(m) for m in chosen}
    for m in board.metrics:
        col = column(m)
        if col is not None and col.headline and col not in declared:
            chosen.append(m)
            declared.add(col)
    return chosen[:HEADLINE_MAX]


def metric_groups(board: Leaderboard) -> dict[str, list[str]]:
    """The board's columns per metric group that declares them, groups in column order."""
    groups: dict[str, list[str]] = {}
    for m in board.metrics:
        groups.setdefault(column_group(m) or OTHER_GROUP, []).append(m)
    return groups


def board_table(
    board: Leaderboard, metrics: list[str], *, learned: bool, references: bool, info: bool
) -> Table:
    """The ranked learned models and/or the references, with these columns (and the seeds
    and steps columns with `info`). Bold (best) marks learned rows only."""
    heads = ["rank", "model", *(["seeds", "steps"] if info else [])]
    heads += [header(m, board.rank_by) for m in metrics]
    shown = [(board.models, True)] * learned + [(board.references, False)] * references
    rows, classes = [], []
    for models, ranked in shown:
        for r in table_rows(board, models):
            first = [(str(r["rank"]) if ranked else "ref", ""), (r["model"], "")]
            if info:
                first += [(str(r["seeds"]), ""), (r["budget"], "")]
            rows.append(first + [(r["cells"][m], mark(m in r["best"] and ranked)) for m in metrics])
            classes.append("" if ranked else "reference")
    return Table(heads, rows, classes, css="board")


def headline(board: Leaderboard, assets: Assets) -> dict | None:
    if not board.models:
        return None
    table = board_table(board, headline_metrics(board), learned=True, references=False, info=True)
    return {"table": table, "rank_by": board.rank_by}


def references(board: Leaderboard, assets: Assets) -> dict | None:
    if not board.references:
        return None
    table = board_table(board, headline_metrics(board), learned=False, references=True, info=True)
    return {"table": table, "legend": REFERENCES_LEGEND}


def legend(board: Leaderboard, assets: Assets) -> dict | None:
    return {"texts": legends(board), "failures": board.failures}


def small_n(board: Leaderboard, assets: Assets) -> dict | None:
    lines = small_n_lines(board, assets)
    return {"lines": lines} if lines else None


def groups(board: Leaderboard, assets: Assets) -> dict | None:
    tables = {
        group: board_table(board, metrics, learned=True, references=True, info=False)
        for group, metrics in metric_groups(board).items()
    }
    return {"tables": tables} if tables else None


# -- class-conditional sections -----------------------------------------------------------


def _marked(rows: list[list[tuple[str, bool]]], mark: str) -> list[list[tuple[str, str]]]:
    return [[(text, mark if marked else "") for text, marked in row] for row in rows]


def sweeps(board: Leaderboard, assets: Assets) -> dict | None:
    """The option sweeps (guidance w, truncation psi, ...): figure and table each."""
    shown = []
    for sweep in option_sweeps(board):
        png = None
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
        heads, rows = sweep_rows(board, sweep)
        table = Table(heads, _marked(rows, "best"))
        shown.append(
            {
                "title": sweep.title,
                "option": sweep.option,
                "models": sweep.models,
                "png": png,
                "table": table,
                "legend": sweep.legend,
            }
        )
    return {"sweeps": shown} if shown else None


def per_class(board: Leaderboard, assets: Assets) -> dict | None:
    tables = [
        (header(metric), Table(["class", *heads], _marked(rows, "worst"), css="per-class"))
        for metric, heads, rows in per_class_tables(board, assets.per_class)
    ]
    return {"tables": tables, "legend": PER_CLASS_LEGEND.format(mark="red")} if tables else None


# -- figures ------------------------------------------------------------------------------


def quality_vs_speed(board: Leaderboard, assets: Assets) -> dict | None:
    speed = next((m for m in board.metrics if column_kind(m) == "speed"), None)
    quality = board.primary
    if not (speed and quality and quality != speed):
        return None
    t = board.table.dropna(subset=[(speed, "mean"), (quality, "mean")])
    if not len(t):
        return None
    speeds, qualities = t[(speed, "mean")], t[(quality, "mean")]
    refs = set(board.references)
    return {"png": plots.quality_vs_speed(list(t.index), speeds, qualities, quality, speed, refs)}


def throughput(board: Leaderboard, assets: Assets) -> dict | None:
    sweeps = {
        m: assets.throughput[_key(board, m)]
        for m in board.table.index
        if _key(board, m) in assets.throughput and m not in board.references
    }
    if not any(len(rows) > 1 for rows in sweeps.values()):
        return None
    return {"png": plots.throughput_vs_batch(sweeps)}


def _grids(board: Leaderboard, found: dict[tuple, bytes]) -> dict | None:
    grids = [(m, found[_key(board, m)]) for m in board.table.index if _key(board, m) in found]
    return {"grids": grids} if grids else None


def samples(board: Leaderboard, assets: Assets) -> dict | None:
    return _grids(board, assets.samples)


def traversals(board: Leaderboard, assets: Assets) -> dict | None:
    """The latent traversal grids (bench.traversal) of the models that have codes."""
    return _grids(board, assets.traversals)


def neighbours(board: Leaderboard, assets: Assets) -> dict | None:
    return _grids(board, assets.neighbours)


def class_histograms(board: Leaderboard, assets: Assets) -> dict | None:
    hists = {
        m: assets.histograms[_key(board, m)]
        for m in board.table.index
        if assets.histograms.get(_key(board, m))
    }
    return {"png": plots.class_histograms(hists)} if hists else None


def losses(board: Leaderboard, assets: Assets) -> dict | None:
    curves = {}
    for models, fit in by_trained_model(board).items():
        if _key(board, fit) in assets.losses:  # one panel per trained model, titled by all its rows
            curves[", ".join(models)] = assets.losses[_key(board, fit)]
    return {"png": plots.loss_curves(curves)} if curves else None


def training_curves(board: Leaderboard, assets: Assets) -> dict | None:
    """A metric-against-step plot per column the trained jobs scored during training."""
    curves = assets.curves.get((board.suite, board.dataset), {})
    figures = [(c, plots.metric_vs_step(c, runs)) for c, runs in curves.items()]
    return {"figures": figures} if figures else None


def provenance_section(board: Leaderboard, assets: Assets) -> dict | None:
    return {"rows": provenance(board)}


SECTIONS: list[Section] = [
    Section("headline", headline),
    Section("references", references),
    Section("legend", legend),
    Section("small_n", small_n),
    Section("groups", groups),
    Section("sweeps", sweeps),
    Section("per_class", per_class),
    Section("quality_vs_speed", quality_vs_speed),
    Section("throughput", throughput),
    Section("samples", samples),
    Section("traversals", traversals),
    Section("neighbours", neighbours),
    Section("class_histograms", class_histograms),
    Section("losses", losses),
    Section("training_curves", training_curves),
    Section("per_sample", per_sample),
    Section("provenance", provenance_section),
]


def board_sections(board: Leaderboard, assets: Assets) -> list[tuple[str, dict]]:
    """(template, its data) of each section the board has something to show in."""
    shown = ((s.name, s.build(board, assets)) for s in SECTIONS)
    return [(f"sections/{name}.html", data) for name, data in shown if data is not None]


def environment() -> Environment:
    """The templates' environment: autoescaped, an undefined name an error."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=StrictUndefined,
    )
    env.filters["data_uri"] = data_uri
    return env


def to_html(boards: list[Leaderboard], assets: Assets) -> str:
    pages = [
        {"title": f"{b.suite} / {b.dataset}", "sections": board_sections(b, assets)} for b in boards
    ]
    return environment().get_template("leaderboard.html").render(boards=pages)
