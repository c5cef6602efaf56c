"""`genbench throughput`: a model's sampling throughput per batch size (img/s, ms/img, NFE,
FLOPs, memory, compile time), as a table or JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import typer

from bench.errors import UserError


@dataclass(frozen=True)
class ThroughputRequest:
    """Which model (its `options` a JSON object, its weights `checkpoint` or none: speed does
    not depend on them) on which dataset's shape, at which batch sizes (comma-separated) and
    precision, timed `repeats` times each."""

    model: str
    dataset: str
    checkpoint: Path | None = None
    options: str = "{}"
    batch_sizes: str = "1,16,64,256"
    dtype: str = "fp32"
    compile: bool = False
    repeats: int = 5
    device: str = "auto"
    data_root: Path | None = None
    json_out: bool = False


def batch_sizes(text: str) -> list[int]:
    """--batch-sizes: comma-separated positive integers."""
    try:
        sizes = [int(b) for b in text.split(",") if b.strip()]
    except ValueError as e:
        raise UserError(f"bad --options or --batch-sizes: {e}") from None
    if not sizes or min(sizes) < 1:
        raise UserError("--options must be a JSON object and --batch-sizes positive integers")
    return sizes


def measure_throughput(req: ThroughputRequest) -> None:
    """Measure and print the sweep (JSON with `req.json_out`)."""
    from bench.commands.options import json_options

    sizes = batch_sizes(req.batch_sizes)
    opts = json_options(req.options)
    from bench.data import load_dataset
    from bench.device import resolve_device
    from bench.job import load_checkpoint
    from bench.models import Budget, build_model, resolve_model
    from bench.throughput import sweep

    dev = resolve_device(req.device)
    data = load_dataset(req.dataset, req.data_root)
    net = build_model(resolve_model(req.model), data, opts, dev)
    if req.checkpoint is not None:
        load_checkpoint(net, req.checkpoint, req.model)
    else:  # an untrained model samples exactly as fast; zero steps sets it up
        net.fit(data, Budget(steps=0), seed=0, progress=lambda step, values: None)
    rows = sweep(net, dev, sizes, dtype=req.dtype, compile=req.compile, repeats=req.repeats)
    if req.json_out:  # NaN (not measured) as null: strict JSON readers reject bare NaN
        clean = [{k: None if v != v else v for k, v in r.items()} for r in rows]
        typer.echo(
            json.dumps({"model": req.model, "dataset": req.dataset, "rows": clean}, indent=2)
        )
        return
    print_rows(req, str(dev), rows)


def print_rows(req: ThroughputRequest, device: str, rows: list[dict]) -> None:
    compiled = "on" if req.compile else "off"
    typer.echo(f"{req.model} on {req.dataset}, {device}, {req.dtype}, compile {compiled}")
    typer.echo(
        "batch  img/s      ms/img    NFE   MFLOP/img  share of matmul peak  memory MB  rsd     load"
    )
    for r in rows:
        mem = r.get("peak_mem_mb", r.get("peak_rss_growth_mb"))
        share = r["share_of_matmul_peak"]
        share_text = "n/a" if share != share else f"{share:.2%}"
        if not r["dtype_native"] and share == share:
            share_text += f" (of {r['matmul_peak_dtype']})"
        typer.echo(
            f"{int(r['batch_size']):>5}  {r['img_s']:<9.4g}  {r['ms_per_img']:<8.4g}  "
            f"{r['nfe']:<4.0f}  {r['flops_per_sample'] / 1e6:<9.4g}  "
            f"{share_text:<20}  {mem:<9.0f}  {r['rsd']:<6.1%}  {r['load']:.0%}"
            + ("  !" if r["disturbed"] else "")
        )
    if req.compile:
        typer.echo(f"compile time (excluded above): {rows[0]['compile_s']:.1f} s")
    disturbed = [r for r in rows if r["disturbed"]]
    for r in disturbed:
        typer.echo(f"! batch {int(r['batch_size'])}: {r['disturbance']}")
    if disturbed:
        typer.echo("! disturbed figures: re-measure on a quiet machine (more --repeats help)")
