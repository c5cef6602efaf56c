"""`genbench fid`: the Fréchet distance between two inputs (image folders, .npz of images or
of statistics, dataset splits), as `python -m pytorch_fid A B` computes it in legacy mode."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from bench.commands.stats import FeatureProtocol, check_hub_weights, write_stats


def run_fid(
    path_a: str,
    path_b: str,
    protocol: FeatureProtocol,
    *,
    save_stats: bool = False,
    json_out: bool = False,
) -> None:
    """Print the FID of `path_a` against `path_b` (JSON with `json_out`); with `save_stats`,
    write `path_a`'s statistics to `path_b` instead, as pytorch-fid's --save-stats."""
    if save_stats:
        write_stats(path_a, Path(path_b), protocol)
        return
    check_hub_weights(protocol.features, path_a, path_b)
    from bench.fid import fid_between

    result = fid_between(
        path_a,
        path_b,
        **protocol.kwargs(),
    )
    typer.echo(json.dumps(result, indent=2) if json_out else f"FID: {result['fid']}")
