"""What a study shows: each model's cached samples from a suite's output folder, or the
images of samples files, and the dataset's real training images.

The samples cache key is not recorded in MLflow, so it is recomputed, read-only, from the
suite each job run's parent run recorded and bench.runner.job_keys; the recomputed job key
must equal the run's recorded one, else the samples are not the ones that run scored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from bench import tracking
from bench.cache import Cache
from bench.data import load_dataset
from bench.errors import UserError
from bench.samples import load_samples_file


@dataclass(frozen=True)
class StudyRun:
    label: str
    dataset: str
    run_id: str
    samples_key: str


def study_runs(
    out_dir: Path, models: list[str] | None, dataset: str | None = None
) -> list[StudyRun]:
    """One finished job run per model label (its first seed) of one dataset."""
    from bench.runner import job_keys
    from bench.suite import Suite, expand_jobs

    db = out_dir / "mlruns" / "mlflow.db"
    if not db.exists():
        raise UserError(f"no MLflow store at {db}; run `genbench run` first or pass --samples")
    client = tracking.client_for(tracking.default_tracking_uri(out_dir))
    runs = tracking.load_job_runs(client)
    if runs.empty or not (runs["status"] == "FINISHED").any():
        raise UserError(f"{out_dir} holds no finished job runs; run `genbench run` first")
    runs = runs[runs["status"] == "FINISHED"]
    datasets = sorted(set(runs["tag.genbench.dataset"]))
    if dataset is None:
        if len(datasets) > 1:
            names = ", ".join(datasets)
            raise UserError(f"{out_dir} has several datasets ({names}); pass --dataset")
        dataset = datasets[0]
    elif dataset not in datasets:
        raise UserError(f"no finished runs on dataset {dataset!r}; it has: {', '.join(datasets)}")
    runs = runs[runs["tag.genbench.dataset"] == dataset]
    labels = list(dict.fromkeys(runs.sort_values("start_time")["tag.genbench.model"]))
    for m in models or []:
        if m not in labels:
            raise UserError(f"unknown model {m!r}; {out_dir} has: {', '.join(labels)}")
    data = load_dataset(dataset)
    out = []
    for label in models or labels:
        rows = runs[runs["tag.genbench.model"] == label]
        seeds = rows["tag.genbench.seed"].astype(int)
        rows = rows[seeds == seeds.min()]
        row = rows.sort_values("start_time").iloc[-1]  # the lowest seed's latest run
        parent = client.get_run(row["tag.mlflow.parentRunId"])
        suite = Suite.model_validate_json(parent.data.params["suite"])
        job = next(
            j
            for j in expand_jobs(suite)
            if j.entry.name == label
            and j.dataset == dataset
            and str(j.seed) == row["tag.genbench.seed"]
        )
        keys = job_keys(job, data)
        if keys["job"] != row["tag.genbench.job_key"]:
            raise UserError(
                f"model {label!r}: its code or files changed since its run, so its cached "
                "samples cannot be found; rerun `genbench run`"
            )
        out.append(StudyRun(label, dataset, row["run_id"], keys["samples"]))
    return out


def study_sources(out_dir: Path, models: list[str] | None) -> dict[str, torch.Tensor]:
    """Model label -> its cached uint8 NCHW samples, for the models of a suite's output."""
    cache = Cache(out_dir / "cache")
    out = {}
    for run in study_runs(out_dir, models):
        samples = cache.load("samples", run.samples_key)
        if samples is None:
            raise UserError(f"model {run.label!r} has no cached samples in {out_dir}/cache")
        out[run.label] = samples
    return out


def file_sources(files: list[str], dataset: str) -> dict[str, torch.Tensor]:
    """Label -> images from `LABEL=PATH` or `PATH` (label: the file's stem) arguments."""
    data = load_dataset(dataset)
    if data.kind != "images":
        raise UserError(f"dataset {dataset!r} holds points; a study shows images")
    out: dict[str, torch.Tensor] = {}
    for arg in files:
        label, _, path = arg.rpartition("=") if "=" in arg else ("", "", arg)
        label = label or Path(path).stem
        if label in out:
            raise UserError(f"two samples files are labelled {label!r}; use LABEL=PATH")
        if not Path(path).exists():
            raise UserError(f"samples file {path} not found")
        out[label] = load_samples_file(Path(path), data)
    if not out:
        raise UserError("no samples: pass --out DIR (a suite's output) or --samples FILE")
    return out


def real_images(dataset: str) -> torch.Tensor:
    return load_dataset(dataset).train.x
