"""Two leaderboards side by side: which rankings changed and which metrics moved by more
than their uncertainty (the sum of both 95% half-widths, or of both stds from 2 seeds)."""

from __future__ import annotations

import math

from bench.report.leaderboard import Leaderboard
from bench.report.render import fmt


def _spread(board: Leaderboard, model: str, metric: str) -> float:
    t = board.table.loc[model]
    ci, std = t[(metric, "ci95")], t[(metric, "std")]
    return ci if not math.isnan(ci) else std


def compare(new: list[Leaderboard], old: list[Leaderboard]) -> str:
    """A Markdown summary of what changed from `old` to `new`."""
    old_by_key = {(b.suite, b.dataset): b for b in old}
    parts = ["# Leaderboard comparison", ""]
    for b in new:
        o = old_by_key.get((b.suite, b.dataset))
        parts.append(f"## {b.suite} / {b.dataset}")
        if o is None:
            parts += ["", "Not in the other leaderboard.", ""]
            continue
        parts += ["", f"Ranked by {', then '.join(b.rank_by) or 'name'}.", ""]
        old_rank = {m: i for i, m in enumerate(o.models, 1)}
        new_rank = {m: i for i, m in enumerate(b.models, 1)}
        for m in b.models:
            if m not in old_rank:
                parts.append(f"- {m}: new, rank {new_rank[m]}")
            elif old_rank[m] != new_rank[m]:
                parts.append(f"- {m}: rank {old_rank[m]} -> {new_rank[m]}")
        parts += [f"- {m}: gone (was rank {old_rank[m]})" for m in o.models if m not in new_rank]
        moved = []
        for m in b.table.index.intersection(o.table.index):
            for metric in (x for x in b.metrics if x in o.metrics):
                a, z = b.table.loc[m, (metric, "mean")], o.table.loc[m, (metric, "mean")]
                if math.isnan(a) or math.isnan(z) or a == z:
                    continue
                s_new, s_old = _spread(b, m, metric), _spread(o, m, metric)
                if math.isnan(s_new) or math.isnan(s_old):
                    moved.append(
                        f"| {m} | {metric} | {fmt(z)} | {fmt(a)} | no interval (single seed) |"
                    )
                elif abs(a - z) > s_new + s_old:
                    moved.append(
                        f"| {m} | {metric} | {fmt(z)} | {fmt(a)} | beyond ± {fmt(s_new + s_old)} |"
                    )
        if moved:
            parts += [
                "",
                "| model | metric | before | after | change |",
                "|---|---|---|---|---|",
                *moved,
            ]
        else:
            parts += ["", "No metric moved beyond its uncertainty."]
        parts.append("")
    return "\n".join(parts)
