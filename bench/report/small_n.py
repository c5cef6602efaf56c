"""The leaderboard footer's small-n warnings: what each job's scoring found its sample count
too small for (bench.scoring.small_n_warnings, kept in its report_data.json), once each."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.report.leaderboard import Leaderboard
    from bench.report.render import Assets


def small_n_lines(board: Leaderboard, assets: Assets | None) -> list[str]:
    """The board's distinct small-n warnings, each a line starting 'warning:'."""
    if assets is None:
        return []
    lines: dict[str, None] = {}
    for model in board.table.index:
        for line in assets.small_n.get((board.suite, board.dataset, model), ()):
            lines.setdefault(f"warning: {line}")
    return list(lines)
