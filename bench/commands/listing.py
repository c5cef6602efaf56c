"""`genbench list`: the registered names of one kind, with what `genbench list` says of each
(read from the declarations: no plug-in module is imported)."""

from __future__ import annotations

import typer


def list_names(what: str) -> None:
    """Print the registered models (marked class-conditional or reference), datasets,
    metrics (with their columns and measured cost), extractors or executors."""
    if what == "metrics":
        from bench.metrics import describe
        from bench.metrics.costs import cost_line, costs_header, read_costs

        costs = read_costs()
        typer.echo(costs_header(costs))
        for name, columns, summary, suite_names in describe():
            cost = f"\n    {cost_line(suite_names, costs)}" if suite_names else ""
            typer.echo(f"{name}: {columns}\n    {summary}{cost}")
    elif what == "executors":
        from bench.executors import describe_executors

        typer.echo("\n".join(describe_executors()))
    elif what == "models":
        from bench.models import describe_models

        for name, text in describe_models():
            typer.echo(f"{name:<16} {text}".rstrip())
    elif what == "datasets":
        from bench.data import dataset_names

        typer.echo("\n".join(dataset_names()))
    else:
        from bench.features import extractor_names

        typer.echo("\n".join(extractor_names()))
