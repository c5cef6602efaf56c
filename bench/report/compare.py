"""Two leaderboards side by side: which rankings changed, which metrics moved by more than
their uncertainty, and whether the two were even made on one budget and protocol.

A change counts when it exceeds the sum of both sides' uncertainties (95% half-widths from
3+ seeds, else stds from 2 seeds). A metric with no interval on either side (a single seed)
cannot be told from noise: such changes are listed apart as "noise unknown", never as moves.
`_std` columns are a spread, not a result, and are not compared.
"""

from __future__ import annotations

import math

from bench.report.leaderboard import PROVENANCE, Leaderboard
from bench.report.render import fmt

# provenance keys that make two leaderboards comparable: one budget, one protocol
PROTOCOL_KEYS = ("n_samples", "budget_steps", "budget_seconds", "suite_version", "dataset_hash")


def _spread(board: Leaderboard, model: str, metric: str) -> float:
    t = board.table.loc[model]
    ci, std = t[(metric, "ci95")], t[(metric, "std")]
    return ci if not math.isnan(ci) else std


def protocol(board: Leaderboard) -> dict[str, str]:
    """The budget and protocol a board's runs were made with: each key's values, joined."""
    runs = board.runs
    keys = [*PROTOCOL_KEYS]
    keys += sorted(
        c.removeprefix(PROVENANCE)
        for c in runs.columns
        if c.startswith(PROVENANCE) and c.endswith("weights_sha256")
    )
    out = {}
    for key in keys:
        col = f"{PROVENANCE}{key}"
        values = sorted({str(v) for v in runs[col].dropna()}) if col in runs else []
        out[key] = ", ".join(values) or "–"
    out["metrics"] = ", ".join(board.metrics) or "–"
    return out


def protocol_differences(before: Leaderboard, after: Leaderboard) -> list[str]:
    a, b = protocol(before), protocol(after)
    lines = []
    for key in dict.fromkeys([*a, *b]):
        if key == "metrics":
            gone = [m for m in before.metrics if m not in after.metrics]
            new = [m for m in after.metrics if m not in before.metrics]
            if gone:
                lines.append(f"- metrics only before: {', '.join(gone)}")
            if new:
                lines.append(f"- metrics only after: {', '.join(new)}")
        elif a.get(key, "–") != b.get(key, "–"):
            lines.append(f"- {key}: before {a.get(key, '–')}, after {b.get(key, '–')}")
    return lines


def compare(
    new: list[Leaderboard], old: list[Leaderboard], after: str = "new", before: str = "old"
) -> str:
    """A Markdown summary of what changed from `old` (the folder `before`) to `new`
    (the folder `after`)."""
    old_by_key = {(b.suite, b.dataset): b for b in old}
    parts = [
        "# Leaderboard comparison",
        "",
        f"Before: `{before}`. After: `{after}`.",
        "",
        "A metric moved when the change exceeds the sum of both sides' uncertainties (95% "
        "half-widths from 3+ seeds, else stds from 2 seeds); with a single seed on either "
        "side there is no interval, and its change is listed as noise unknown. `_std` "
        "columns are not compared.",
        "",
    ]
    for b in new:
        o = old_by_key.get((b.suite, b.dataset))
        parts.append(f"## {b.suite} / {b.dataset}")
        if o is None:
            parts += ["", "Only after: not in the before leaderboard.", ""]
            continue
        differences = protocol_differences(o, b)
        if differences:
            parts += ["", "**Budget or protocol differ; numbers may not be comparable:**", ""]
            parts += differences
        parts += ["", f"Ranked by {', then '.join(b.rank_by) or 'name'}.", ""]
        parts += _rank_changes(o, b)
        moved, unknown = _metric_changes(o, b)
        if moved:
            parts += ["", "| model | metric | before | after | beyond ± |", "|---|---|---|---|---|"]
            parts += moved
        else:
            parts += ["", "No metric moved beyond its uncertainty."]
        if unknown:
            parts += ["", "Noise unknown (a single seed on a side: no interval):", ""]
            parts += ["| model | metric | before | after |", "|---|---|---|---|", *unknown]
        parts.append("")
    for key in old_by_key.keys() - {(b.suite, b.dataset) for b in new}:
        parts += [f"## {key[0]} / {key[1]}", "", "Only before: not in the after leaderboard.", ""]
    return "\n".join(parts)


def _rank_changes(o: Leaderboard, b: Leaderboard) -> list[str]:
    old_rank = {m: i for i, m in enumerate(o.models, 1)}
    new_rank = {m: i for i, m in enumerate(b.models, 1)}
    lines = []
    for m in b.models:
        if m not in old_rank:
            lines.append(f"- {m}: new, rank {new_rank[m]}")
        elif old_rank[m] != new_rank[m]:
            lines.append(f"- {m}: rank {old_rank[m]} -> {new_rank[m]}")
    lines += [f"- {m}: gone (was rank {old_rank[m]})" for m in o.models if m not in new_rank]
    return lines


def _metric_changes(o: Leaderboard, b: Leaderboard) -> tuple[list[str], list[str]]:
    moved, unknown = [], []
    metrics = [x for x in b.metrics if x in o.metrics and not x.endswith("_std")]
    for m in b.table.index.intersection(o.table.index):
        for metric in metrics:
            a, z = b.table.loc[m, (metric, "mean")], o.table.loc[m, (metric, "mean")]
            if math.isnan(a) or math.isnan(z) or a == z:
                continue
            s_new, s_old = _spread(b, m, metric), _spread(o, m, metric)
            if math.isnan(s_new) or math.isnan(s_old):
                unknown.append(f"| {m} | {metric} | {fmt(z)} | {fmt(a)} |")
            elif abs(a - z) > s_new + s_old:
                moved.append(f"| {m} | {metric} | {fmt(z)} | {fmt(a)} | {fmt(s_new + s_old)} |")
    return moved, unknown
