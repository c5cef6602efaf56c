"""`genbench eval`: score pre-generated samples (or samples drawn here from a model that
comes trained) against a dataset, every metric from one feature pass."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import typer

from bench.errors import UserError


@dataclass(frozen=True)
class EvalRequest:
    """What to score (`samples`, or `model` sampled `n` times at `seed` with `options`, a
    JSON object), against which dataset, in which feature space, with which metrics."""

    dataset: str
    samples: Path | None = None
    model: str | None = None
    options: str = "{}"
    n: int = 1000
    seed: int = 0
    features: str = "auto"
    metrics: str = "fd,kid,prdc,memorization"
    weights: Path | None = None
    data_root: Path | None = None
    device: str = "auto"
    json_out: bool = False
    nproc: int = 1


def evaluate(req: EvalRequest) -> None:
    """Score and print the metrics (JSON with `req.json_out`); bad input is refused before
    torch loads where that can be told from the files alone."""
    from bench.data import dataset_arrays
    from bench.samples import read_samples, sample_labels, source_indices

    samples, model = req.samples, req.model
    if (samples is None) == (model is None):
        raise UserError("give --samples FILE or --model PREFIX:PATH (one of them)")
    arrays = dataset_arrays(req.dataset, req.data_root)  # bad data or samples: before torch
    rows = None  # of translations: the source test row of each, when the file holds them
    if samples is not None:
        samples_read, labels_read = read_samples(samples, arrays), sample_labels(samples, arrays)
        rows = source_indices(samples, arrays)
    import torch

    from bench.data import load_dataset
    from bench.distributed import score_data_parallel
    from bench.features import default_extractor
    from bench.samples import check_samples
    from bench.scoring import needing_sample_labels, plan, small_n_warnings, weights_network

    data = load_dataset(req.dataset, req.data_root)
    extractor = default_extractor(data) if req.features == "auto" else req.features
    names = [m.strip() for m in req.metrics.split(",") if m.strip()]
    weights = req.weights
    paths = {weights_network(extractor, names): weights.resolve()} if weights is not None else {}
    if weights is not None and not weights.is_file():
        raise UserError(f"--weights {weights}: no such file")
    count = req.n if model is not None else len(samples_read)
    planned = plan(names, data, [extractor], count, paths)  # bad input: one line before work
    if model is not None:
        from bench.commands.options import json_options
        from bench.device import resolve_device
        from bench.job import sample_pretrained

        opts = json_options(req.options)
        device = resolve_device(req.device)
        samples_read, labels = sample_pretrained(model, opts, data, req.n, req.seed, device)
    else:
        labels = None if labels_read is None else torch.from_numpy(labels_read)
    x = check_samples(samples_read, data)
    conditional = needing_sample_labels(planned)
    if conditional and labels is None and model is not None:
        raise UserError(
            f"metric {conditional[0]!r} needs a class-conditional model; {model} is not"
        )
    if conditional and labels is None:
        raise UserError(
            f"metric {conditional[0]!r} needs the class each sample was asked for; {samples} "
            "holds no labels: save them in the .npz (np.savez(F, images=x, labels=y))"
        )
    scored = score_data_parallel(
        data, x, req.device, extractor, names, req.nproc, paths, labels, rows
    )
    if scored is None:  # a torchrun rank other than 0: rank 0 prints
        return
    # after scoring, so that a refusal made while scoring (a missing weights file) is one line
    small_n = small_n_warnings(planned, data, len(x))
    for line in small_n:
        typer.echo(f"warning: {line}", err=True)
    ctx, results = scored
    if req.json_out:
        typer.echo(
            json.dumps(
                {
                    "metrics": results,
                    "n": len(x),
                    "dataset": req.dataset,
                    "features": extractor,
                    "warnings": small_n,
                    **ctx.provenance,
                },
                indent=2,
            )
        )
        return
    for k, v in results.items():
        typer.echo(f"{k}: {v:.6g}")
