"""Leaderboards -> leaderboard.md, leaderboard.csv and a self-contained leaderboard.html."""

from __future__ import annotations

import base64
import html
import math
import tempfile
from pathlib import Path

import pandas as pd

from bench.metrics import direction
from bench.report.leaderboard import Leaderboard, build_leaderboards

ARROWS = {"lower": "↓", "higher": "↑", "closer to 0": "→0", "closer to 1": "→1"}


def fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.3e}"
    return f"{x:.4g}"


def cell(board: Leaderboard, model: str, metric: str) -> str:
    mean, std = board.table.loc[model, (metric, "mean")], board.table.loc[model, (metric, "std")]
    text = fmt(mean) if math.isnan(std) else f"{fmt(mean)} ± {fmt(std)}"
    return text


def header(metric: str) -> str:
    d = direction(metric)
    return f"{metric} {ARROWS[d]}" if d else metric


def rows(board: Leaderboard) -> list[dict]:
    out = []
    for rank, model in enumerate(board.table.index, 1):
        t = board.table.loc[model]
        out.append(
            {
                "model": model,
                "reference": bool(t[("reference", "")]),
                "seeds": int(t[("seeds", "")]),
                "budget_steps": t[("budget_steps", "")],
                "cells": {m: cell(board, model, m) for m in board.metrics},
                "best": {m for m in board.metrics if board.best.get(m) == model},
                "rank": rank,
            }
        )
    return out


def to_markdown(boards: list[Leaderboard]) -> str:
    parts = []
    for b in boards:
        parts.append(f"## {b.suite} / {b.dataset}\n")
        head = ["model", "seeds", *(header(m) for m in b.metrics)]
        parts.append("| " + " | ".join(head) + " |")
        parts.append("|" + "---|" * len(head))
        for r in rows(b):
            name = f"{r['model']} (reference)" if r["reference"] else r["model"]
            cells = [f"**{r['cells'][m]}**" if m in r["best"] else r["cells"][m] for m in b.metrics]
            parts.append("| " + " | ".join([name, str(r["seeds"]), *cells]) + " |")
        parts.append("")
        parts.append(
            "Mean ± std across seeds; **bold** = best learned model; arrows give each "
            "metric's direction. References (copier, pixel-gaussian, ...) bound the "
            "scale and are not ranked."
        )
        for f in b.failures:
            parts.append(f"\n- FAILED: {f['model']} seed {f['seed']}: {f['error']}")
        parts.append("")
    return "\n".join(parts)


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


def to_html(boards: list[Leaderboard], images: dict[tuple[str, str, str], bytes]) -> str:
    e = html.escape
    body = []
    for b in boards:
        body.append(f"<h2>{e(b.suite)} / {e(b.dataset)}</h2>")
        head = "".join(f"<th>{e(header(m))}</th>" for m in b.metrics)
        body.append(f"<table><thead><tr><th>model</th><th>seeds</th>{head}</tr></thead><tbody>")
        for r in rows(b):
            cls = ' class="reference"' if r["reference"] else ""
            tds = "".join(
                f'<td class="best">{e(r["cells"][m])}</td>'
                if m in r["best"]
                else f"<td>{e(r['cells'][m])}</td>"
                for m in b.metrics
            )
            label = e(r["model"]) + (" <small>(reference)</small>" if r["reference"] else "")
            body.append(f"<tr{cls}><td>{label}</td><td>{r['seeds']}</td>{tds}</tr>")
        body.append("</tbody></table>")
        for f in b.failures:
            body.append(
                f'<p class="failed">FAILED: {e(f["model"])} seed {e(str(f["seed"]))}: '
                f"{e(f['error'])}</p>"
            )
        body.append('<div class="grids">')
        for r in rows(b):
            png = images.get((b.suite, b.dataset, r["model"]))
            if png:
                src = "data:image/png;base64," + base64.b64encode(png).decode()
                body.append(
                    f'<figure><img src="{src}" alt="samples of {e(r["model"])}">'
                    f"<figcaption>{e(r['model'])}</figcaption></figure>"
                )
        body.append("</div>")
    return HTML_TEMPLATE.replace("{body}", "\n".join(body))


HTML_TEMPLATE = """<!doctype html>
<html><head><meta charset="utf-8"><title>genbench leaderboard</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
td.best{font-weight:bold;background:#e6f4ea}
tr.reference td{color:#777;font-style:italic}
.grids{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0}figcaption{text-align:center;font-size:90%}
img{image-rendering:pixelated;max-width:360px;border:1px solid #ddd}
.failed{color:#b00}
</style></head><body>
<h1>genbench leaderboard</h1>
<p>Mean ± std across seeds. Bold: best learned model per column. Arrows: direction of each
metric. References bound the scale and are not ranked.</p>
{body}
</body></html>
"""


def sample_images(client, boards: list[Leaderboard]) -> dict[tuple[str, str, str], bytes]:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for b in boards:
            for model, run_id in b.sample_runs.items():
                try:
                    path = client.download_artifacts(run_id, "samples.png", tmp)
                except Exception:  # an artifact store that lost the file: report without it
                    continue
                out[b.suite, b.dataset, model] = Path(path).read_bytes()
    return out


def write_report(client, out_dir: Path, suite: str | None = None) -> list[Leaderboard]:
    """Rebuild the leaderboard from MLflow and write .md/.csv/.html into out_dir."""
    from bench.tracking import load_job_runs

    boards = build_leaderboards(load_job_runs(client, suite))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "leaderboard.md").write_text(to_markdown(boards))
    to_csv(boards).to_csv(out_dir / "leaderboard.csv", index=False)
    (out_dir / "leaderboard.html").write_text(to_html(boards, sample_images(client, boards)))
    return boards
