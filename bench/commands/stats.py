"""`genbench stats`: reference statistics (mu, sigma and genbench's protocol record) of a
dataset split, an image folder or an .npz of images."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import typer


@dataclass(frozen=True)
class FeatureProtocol:
    """How `genbench fid` and `genbench stats` compute features: the extractor (and its
    weights file), the Inception preprocessing mode, and where they run."""

    features: str = "inception"
    weights: Path | None = None
    mode: str = "clean"
    dataset: str | None = None
    data_root: Path | None = None
    batch_size: int = 50
    device: str = "auto"

    def kwargs(self) -> dict:
        """The protocol as the keyword arguments of bench.fid's functions."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def check_hub_weights(features: str, *inputs: str) -> None:
    """When Inception features are computed (an input is not a statistics file), a file in
    torch hub's place that cannot be its weights is refused before torch loads."""
    from bench.npz import is_stats_file

    if features == "inception" and not all(is_stats_file(p) for p in inputs):
        from bench.features.inception_hub import check_hub_file

        check_hub_file()


def write_stats(source: str, out: Path, protocol: FeatureProtocol) -> None:
    """Write `source`'s statistics to `out` and say what was written."""
    check_hub_weights(protocol.features, source)
    from bench.fid import write_source_stats

    made = write_source_stats(
        source,
        out,
        **protocol.kwargs(),
    ).protocol
    mode = f" (mode {made.mode})" if made.mode else ""
    typer.echo(
        f"{out}: {made.dim}-d {made.extractor} statistics{mode}, n={made.n}, from {made.source}"
    )
