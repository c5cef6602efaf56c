"""One job: fit or load -> sample -> score -> a JobRecord. No MLflow here.

Checkpoints and samples are cached under keys that hash everything that determines them,
so a rerun trains nothing it has trained before.
"""

from __future__ import annotations

import json
import numbers
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from bench.cache import Cache, hash_key
from bench.data import ImageDataset
from bench.errors import UserError, first_line
from bench.grids import class_rows, image_grid, save_nn_grid, save_sample_figure
from bench.metrics import artifacts_of
from bench.models import (
    Budget,
    GenerativeModel,
    build_model,
    check_model_files,
    is_conditional,
    is_pretrained,
    is_reference,
    model_file,
    resolve_model,
)
from bench.npz import has_array
from bench.origin import files_hash, package_version, source_hash
from bench.progress import progress_bar
from bench.record import JobRecord
from bench.samples import (
    LABELS_KEY,
    SOURCE_INDICES_KEY,
    check_samples,
    load_sample_labels,
    load_samples_file,
    source_indices,
)
from bench.scoring import ScoringContext, score
from bench.suite import Job
from bench.training_eval import TrainingEval
from bench.translation import is_translation
from bench.translation.grid import translation_grid
from bench.translation.translate import translate_sources
from bench.traversal import traversal_png

SCORING_VERSION = 1  # bump when metric code changes results, to re-score cached jobs
LOSS_HISTORY_POINTS = 200


@dataclass(frozen=True)
class RunOptions:
    out_dir: Path
    tracking_uri: str | None = None
    data_root: Path | None = None
    device: str = "auto"

    @property
    def locks(self) -> Path:
        return self.out_dir / "locks"

    def lock_path(self, job_key: str) -> Path:
        return self.locks / f"{job_key}.lock"


@dataclass
class JobResult:
    job: Job
    status: str  # FINISHED, FAILED, REUSED
    run_id: str | None = None
    error: str | None = None
    seconds: float = 0.0
    # of a job run now: "trained" its model, sampled one from the "cache" (trained by an
    # earlier run, or by another job of a sweep), or "none" (references, checkpoints,
    # samples files)
    fit: str = "none"


def model_class(job: Job) -> type | None:
    """The job's model class (resolved once per job and passed on), None for a samples file."""
    return None if job.entry.samples is not None else resolve_model(job.entry.ref)


def new_record(
    job: Job, data: ImageDataset, machine: dict[str, str], cls: type | None
) -> JobRecord:
    """The record of a job before it runs: keys, labels, params. `cls`: model_class(job)."""
    suite, entry = job.suite, job.entry
    keys = job_keys(job, data, cls)
    source = (
        "samples-file"
        if entry.samples
        else "checkpoint"
        if entry.checkpoint
        else "pretrained"
        if is_pretrained(cls)
        else "trained"
    )
    params = {
        "dataset": job.dataset,
        "model": entry.ref,
        "seed": job.seed,
        "sample_seed": sample_seed(job.seed),
        "n_samples": suite.n_samples,
        # a samples file was trained by someone else, on a budget genbench does not know
        **(
            {}
            if entry.samples
            else {"budget_steps": suite.budget.steps, "budget_seconds": suite.budget.seconds}
        ),
        **{f"option.{k}": v for k, v in entry.options.items()},
        **({"checkpoint": entry.checkpoint} if entry.checkpoint else {}),
        # what a pretrained model's files say of it (a pipeline's configs, its library version)
        **{f"model.{k}": v for k, v in getattr(cls, "provenance", {}).items()},
        **({"samples_file": entry.samples} if entry.samples else {}),
    }
    labels = label_source(job, data, cls)
    if labels is not None:
        params.update({"conditional": True, "labels": labels})
    if suite.eval_every is not None and source == "trained":
        params.update({"eval_every": suite.eval_every, "keep": suite.keep})
    weights = entry.checkpoint or (model_file(cls) if cls else None)
    return JobRecord(
        job_key=keys["job"],
        fit_key=keys["fit"],
        samples_key=keys["samples"],
        suite=suite.name,
        suite_version=suite.version,
        dataset=job.dataset,
        dataset_hash=data.content_hash,
        model=entry.name,
        model_ref=entry.ref if entry.samples is None else "samples-file",
        source=source,
        seed=job.seed,
        reference=cls is not None and is_reference(cls),
        params=params,
        machine=machine,
        model_version=package_version(cls) if cls else "",
        model_source_sha256=source_hash(cls) if cls else "",
        checkpoint_sha256=files_hash(weights) if weights else "",
        samples_sha256=files_hash(entry.samples) if entry.samples else "",
    )


def compute(
    job: Job,
    data: ImageDataset,
    record: JobRecord,
    cache: Cache,
    device: torch.device,
    cls: type | None,
) -> JobRecord:
    """Fit or load, sample and score; fills the record's results. `cls`: model_class(job)."""
    suite = job.suite
    model = None
    t0 = time.perf_counter()
    if cls is not None:
        model = fit_or_load(job, data, record.fit_key, cache, device, record, cls)
    record.timings["fit_or_load_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    samples, labels, rows = draw_samples(job, data, model, record.samples_key, cache)
    record.timings["sample_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ctx = ScoringContext(
        data,
        samples,
        device,
        fake_labels=labels,
        source_indices=rows,
        features_for=suite.features,
        weights=suite.weights,
        model=model,
        batch_size=suite.sample_batch_size,
        throughput_batch_sizes=suite.throughput_batch_sizes,
    )
    record.metrics = score(ctx, suite.metrics)
    record.timings["score_s"] = time.perf_counter() - t0
    record.features = dict(ctx.provenance)
    record.artifacts = artifacts(job, data, samples, labels, record.metrics, ctx.artifacts, rows)
    if model is not None and data.kind == "images":
        traversal = traversal_png(model)
        if traversal is not None:
            record.artifacts["traversal.png"] = traversal
    tqdm.write("  " + ", ".join(f"{k}={v:.4g}" for k, v in record.metrics.items()))
    return record


def fit_or_load(
    job: Job, data: ImageDataset, fit_key: str, cache: Cache, device, record: JobRecord, cls: type
) -> GenerativeModel:
    entry, suite = job.entry, job.suite
    torch.manual_seed(job.seed)  # weight initialization draws from the global RNG
    model = build_model(cls, data, dict(entry.options), device)
    record.nfe = str(getattr(model, "nfe", "unknown"))
    record.sample_options = json.dumps(getattr(model, "sample_options", {}))
    record.sweep_options = json.dumps(dict(getattr(model, "SWEEP_OPTIONS", {})))
    if entry.checkpoint is not None or is_pretrained(cls):
        if entry.checkpoint is not None:
            load_checkpoint(model, entry.checkpoint, entry.ref)
        record.budget_spent_steps, record.budget_spent_seconds, record.fit_cached = 0, 0.0, True
        return model
    # Jobs that share a trained model (a sampling sweep) wait for its fit, then load it.
    with cache.lock("checkpoints", fit_key):
        cached = cache.load("checkpoints", fit_key)
        if cached is None:
            info = fit(model, data, suite, job, entry.name, device)
            cache.save("checkpoints", fit_key, {"state": model.state_dict(), "info": info})
    if cached is not None:
        load_checkpoint_dict(model, cached["state"], "the cached checkpoint", entry.ref)
        info = cached["info"]
    record.budget_spent_steps, record.budget_spent_seconds = info["steps"], info["seconds"]
    # caches written before steps_from: steps counted were returned, none were unknown
    record.steps_from = info.get("steps_from", "returned" if info["steps"] else "unknown")
    record.fit_cached = cached is not None
    record.loss_history = [tuple(p) for p in info["losses"]]
    record.eval_history = [(step, dict(values)) for step, values in info.get("evals", [])]
    if "eval_seconds" in info:
        record.timings["eval_in_fit_s"] = info["eval_seconds"]
        record.kept_step = info["kept_step"]
    return model


def fit(
    model: GenerativeModel, data: ImageDataset, suite, job: Job, label: str, device=None
) -> dict:
    budget = Budget(suite.budget.steps, suite.budget.seconds)
    losses: list[tuple[int, float]] = []
    highest = 0
    bar = progress_bar(total=budget.steps, desc=f"  fit {label}", unit="step")
    evaluator = TrainingEval(suite, data, model, device) if suite.eval_every else None

    def progress(step: int, values: dict[str, float]) -> None:
        nonlocal highest
        highest = max(highest, int(step))
        if "loss" in values:
            losses.append((step, float(values["loss"])))
            bar.set_postfix(loss=f"{float(values['loss']):.4g}", refresh=False)
        bar.update(step - bar.n)
        if evaluator is not None:
            evaluator(int(step))

    t0 = time.perf_counter()
    try:
        spent = model.fit(data, budget, seed=job.seed, progress=progress)
    finally:
        bar.close()  # also when stopped: the next line starts on a line of its own
    steps, steps_from = steps_spent(spent, highest, job.entry.ref)
    info = {"steps_from": steps_from}
    if evaluator is not None:
        kept = evaluator.finish(steps)
        info |= {"evals": evaluator.history, "eval_seconds": evaluator.seconds, "kept_step": kept}
    seconds = time.perf_counter() - t0
    if steps_from == "unknown":
        tqdm.write(
            f"  warning: {label}: fit returned no Spent(steps=...) and reported no step through "
            "progress; its steps are recorded as unknown (0)",
            file=sys.stderr,
        )
    return {"steps": steps, "seconds": seconds, "losses": thin(losses), **info}


def steps_spent(returned: object, reported: int, ref: str) -> tuple[int, str]:
    """The steps a fit spent and where that number came from: what fit returned
    (`Spent`), else the highest step it reported through `progress`, else unknown (0)."""
    if returned is not None:
        steps = getattr(returned, "steps", None)
        if isinstance(steps, bool) or not isinstance(steps, numbers.Real):
            raise UserError(
                f"model {ref!r}: fit returned {type(returned).__name__}; return "
                "bench.models.Spent(steps=...) or nothing (steps are then counted from progress)"
            )
        return int(steps), "returned"
    if reported > 0:
        return reported, "progress"
    return 0, "unknown"


def draw_samples(
    job: Job, data: ImageDataset, model, sample_key: str, cache: Cache
) -> tuple[torch.Tensor, torch.Tensor | None, np.ndarray | None]:
    """The job's samples; for a class-conditional model or a samples file with labels, the
    class each was asked for (else None); for a samples file of translations with
    source_indices, the source test row of each (else None: rows 0 .. n-1). Cached under
    the samples key."""
    with cache.lock("samples", sample_key):  # jobs sharing a sample set draw it once
        cached = cache.load("samples", sample_key)
        if isinstance(cached, dict):
            rows = cached.get(SOURCE_INDICES_KEY)
            return cached["images"], cached["labels"], None if rows is None else rows.numpy()
        if cached is not None:
            return cached, None, None
        n = job.suite.n_samples
        labels = rows = None
        if model is None:
            samples = load_samples_file(job.entry.samples, data, n)
            if len(samples) < n:
                raise UserError(
                    f"{job.entry.samples} holds {len(samples)} samples; the suite asks for "
                    f"n_samples={n}"
                )
            labels = load_sample_labels(job.entry.samples, data, n)
            rows = source_indices(job.entry.samples, data, n)
        elif is_translation(data):
            g = torch.Generator().manual_seed(sample_seed(job.seed))
            samples = translate_sources(model, data, n, g, job.suite.sample_batch_size)
        else:
            g = torch.Generator().manual_seed(sample_seed(job.seed))
            if is_conditional(model):
                labels = asked_labels(n, job.suite.label_mode, model.num_classes, data.train.y, g)
            with torch.inference_mode():
                if labels is None:
                    samples = model.sample(n, generator=g, batch_size=job.suite.sample_batch_size)
                else:
                    samples = model.sample(
                        n,
                        labels=labels.clone(),
                        generator=g,
                        batch_size=job.suite.sample_batch_size,
                    )
        samples = check_samples(samples, data, n)
        if labels is None and rows is None:
            cache.save("samples", sample_key, samples)
        else:
            cached = {"images": samples, "labels": labels}
            if rows is not None:  # a tensor: the cache loads with weights_only
                cached[SOURCE_INDICES_KEY] = torch.from_numpy(rows)
            cache.save("samples", sample_key, cached)
        return samples, labels, rows


def sample_pretrained(
    ref: str, options: dict, data: ImageDataset, n: int, seed: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`genbench eval --model`: n samples of a model that comes trained (an exported
    generator, a pipeline folder), drawn as a suite's job of this seed draws them (balanced
    labels for a class-conditional one); a model that must be trained is refused."""
    check_model_files(ref)
    cls = resolve_model(ref)
    if not is_pretrained(cls):
        raise UserError(
            f"eval --model {ref!r}: it must be trained first; give a model that comes trained "
            "(torchscript:G.pt, onnx:G.onnx, diffusers:FOLDER) or run a suite"
        )
    model = build_model(cls, data, options, device)
    g = torch.Generator().manual_seed(sample_seed(seed))
    labels = None
    if is_conditional(model):
        labels = asked_labels(n, "balanced", model.num_classes, data.train.y, g)
    kwargs = {} if labels is None else {"labels": labels.clone()}
    with torch.inference_mode():
        return model.sample(n, generator=g, batch_size=256, **kwargs), labels


def asked_labels(
    n: int, mode: str, num_classes: int, train_labels: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """The classes asked of a class-conditional model, int64 (n,). balanced: sample i of
    class i % K, so every prefix is balanced (n // K per class, the first n % K classes one
    more); train: drawn with `generator` from the training split's label frequencies."""
    if mode == "balanced":
        return torch.arange(n, dtype=torch.int64) % num_classes
    if mode == "train":
        pick = torch.randint(len(train_labels), (n,), generator=generator)
        return train_labels[pick].to(torch.int64)
    raise ValueError(f"unknown label mode {mode!r}")


def label_source(job: Job, data: ImageDataset, cls: type | None) -> str | None:
    """Where a job's sample labels come from: the suite's label mode for a class-conditional
    model, "file" for a samples .npz that holds labels, None for unconditional jobs."""
    if not data.num_classes:
        return None
    entry = job.entry
    if entry.samples is not None:
        path = Path(entry.samples)
        return "file" if not path.is_dir() and has_array(path, LABELS_KEY) else None
    return job.suite.label_mode if is_conditional(cls) else None


def artifacts(
    job: Job,
    data,
    samples,
    labels,
    metrics: dict,
    report_data: dict,
    source_indices: np.ndarray | None = None,
) -> dict[str, bytes]:
    """The files a job leaves for people and for the report."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if is_translation(data):  # rows of source | translation | target
            translation_grid(data, samples, source_indices).save(folder / "samples.png")
        elif labels is not None and data.kind == "images":
            image_grid(class_rows(samples, labels)).save(folder / "samples.png")
        else:
            save_sample_figure(samples, data.kind, folder / "samples.png", data.train.x)
        if labels is not None:  # the class asked for each sample, in order
            (folder / "sample_labels.json").write_text(json.dumps(labels.tolist()))
        if data.kind == "images" and "nearest_neighbours" in artifacts_of(job.suite.metrics):
            save_nn_grid(samples, data.train.x, folder / "nearest_neighbours.png")
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        per_sample = report_data.get("per_sample")
        if per_sample and data.kind == "images":
            from bench.report.per_sample import draw_panel

            (folder / "per_sample.json").write_text(json.dumps(per_sample))
            draw_panel(samples, data.train.x, next(iter(per_sample.values()))).save(
                folder / "per_sample.png"
            )
        report_data = {k: v for k, v in report_data.items() if k != "per_sample"}
        if report_data:
            (folder / "report_data.json").write_text(json.dumps(report_data, indent=2))
        config = {
            "dataset": job.dataset,
            "seed": job.seed,
            "model": json.loads(job.entry.model_dump_json()),
            "suite": json.loads(job.suite.model_dump_json()),
        }
        (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        return {f.name: f.read_bytes() for f in sorted(folder.iterdir())}


def sample_seed(seed: int) -> int:
    """Sampling gets its own stream, so that changing the training budget keeps it fixed."""
    return 1_000_003 * seed + 17


def job_keys(job: Job, data: ImageDataset, cls: type | None) -> dict[str, str]:
    """fit -> samples -> job: each key hashes everything that determines its result.
    `cls`: model_class(job)."""
    suite, entry = job.suite, job.entry
    labels = label_source(job, data, cls)
    if entry.samples is not None:
        fit_key = "none"
        samples = hash_key(
            "samples-file", data.content_hash, files_hash(entry.samples), suite.n_samples
        )
        if labels is not None:  # cached with their labels: not the entry of an older run
            samples = hash_key(samples, "labels")
        path = Path(entry.samples)
        if not path.is_dir() and has_array(path, SOURCE_INDICES_KEY):  # likewise
            samples = hash_key(samples, SOURCE_INDICES_KEY)
    else:
        weights = entry.checkpoint or model_file(cls)
        ckpt = files_hash(weights) if weights else None
        # Options a family marks as sampling-only (e.g. DDIM steps) reuse one trained model.
        sample_only = set(getattr(cls, "SAMPLE_OPTIONS", ()))
        fit_key = hash_key(
            "fit",
            data.content_hash,
            entry.ref,
            source_hash(cls),
            {k: v for k, v in entry.options.items() if k not in sample_only},
            suite.budget.model_dump(),
            job.seed,
            ckpt,
            *eval_settings(suite),
        )
        samples = hash_key(
            "samples", fit_key, suite.n_samples, suite.sample_batch_size, entry.options
        )
        if labels is not None:  # unconditional keys stay as they were
            samples = hash_key(samples, "labels", labels)
    metrics = sorted(suite.metrics)
    # The label is part of the job: two entries with one config are two leaderboard rows
    # (they share the trained model and samples through the fit and sample keys).
    scoring = [metrics, suite.throughput_batch_sizes, SCORING_VERSION, entry.name]
    if suite.features or suite.weights:  # absent from older keys: their jobs stay reusable
        scoring += [suite.features, {k: str(v) for k, v in sorted(suite.weights.items())}]
    job_key = hash_key("job", samples, *scoring)
    return {"fit": fit_key, "samples": samples, "job": job_key}


def eval_settings(suite) -> list:
    """What in-training evaluation adds to a fit key (nothing without it: older keys stay)."""
    if suite.eval_every is None:
        return []
    return [
        "eval",
        suite.eval_every,
        sorted(suite.training_metrics),
        suite.eval_n,
        suite.keep,
        suite.keep_split,
        suite.features,
        {k: str(v) for k, v in sorted(suite.weights.items())},
        SCORING_VERSION,
    ]


def thin(points: list[tuple[int, float]], k: int = LOSS_HISTORY_POINTS) -> list:
    if len(points) <= k:
        return points
    idx = np.linspace(0, len(points) - 1, k).round().astype(int)
    return [points[i] for i in idx]


def load_checkpoint(model: GenerativeModel, path: Path, ref: str) -> None:
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(
            f"checkpoint {path} cannot be read ({type(e).__name__}); it is truncated, corrupt or "
            "not a weights-only torch file: save it with torch.save(model.state_dict(), PATH)"
        ) from None
    load_checkpoint_dict(model, sd, f"checkpoint {path}", ref)


def load_checkpoint_dict(model: GenerativeModel, sd, what: str, ref: str) -> None:
    try:
        model.load_state_dict(sd)
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        raise UserError(f"{what} does not match model {ref!r}: {first_line(e)}") from None
