"""`genbench report`: rebuild the leaderboard (md, csv, html) from an MLflow store alone,
optionally with the changes against another output folder."""

from __future__ import annotations

from pathlib import Path

import typer

from bench.errors import UserError


def rank_metrics(primary: str | None) -> list[str] | None:
    """--primary: the metric that ranks, then those that break ties (comma-separated)."""
    if primary is None:
        return None
    from bench.metrics import check_rank_metric

    rank_by = [m.strip() for m in primary.split(",") if m.strip()]
    for m in rank_by:
        try:
            check_rank_metric(m)
        except ValueError as e:
            raise UserError(f"--primary: {e}") from None
    return rank_by


def rebuild_report(
    out: Path | None,
    tracking_uri: str | None = None,
    suite: str | None = None,
    primary: str | None = None,
    compare: Path | None = None,
) -> None:
    """Write and print the leaderboards of `out` (or reports/SUITE); with `compare`, the
    output folder before, also OUT/compare.md of the changes."""
    rank_by = rank_metrics(primary)
    if out is None:
        if suite is None:
            raise UserError("pass --out DIR (the folder genbench run wrote) or --suite NAME")
        out = Path("reports") / suite
    if tracking_uri is None:
        db = out / "mlruns" / "mlflow.db"
        if not db.exists():
            raise UserError(f"no MLflow store at {db}; run `genbench run` or pass --tracking-uri")
    if compare is not None:  # checked before anything is written
        before_db = compare / "mlruns" / "mlflow.db"
        if not before_db.exists():
            raise UserError(f"--compare {compare}: no MLflow store at {before_db}")
    from bench.record import open_output_store
    from bench.report.leaderboard import build_leaderboards
    from bench.report.render import to_markdown, write_report

    before = None
    if compare is not None:
        before = build_leaderboards(open_output_store(compare).records(suite), rank_by)
    boards = write_report(open_output_store(out, tracking_uri), out, suite, rank_by)
    if not boards:
        raise UserError("the MLflow store holds no genbench job runs")
    typer.echo(to_markdown(boards))
    typer.echo(f"\nLeaderboard: {out}/leaderboard.md|.csv|.html")
    if before is not None:
        from bench.cache import atomic_write_bytes
        from bench.report.compare import compare as compare_boards

        text = compare_boards(boards, before, after=str(out), before=str(compare))
        atomic_write_bytes(out / "compare.md", text.encode())
        typer.echo("\n" + text)
