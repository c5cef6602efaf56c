"""Executes a suite's jobs: fit or load -> sample -> score -> track. Resumable.

Checkpoints and samples are cached under keys that hash everything that determines them,
so a rerun trains nothing it has trained before. A job counts as done once its MLflow
run is FINISHED; a per-job file lock keeps two processes from running the same job.
"""

from __future__ import annotations

import functools
import inspect
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from filelock import FileLock
from tqdm.auto import tqdm

from bench import tracking
from bench.cache import Cache, hash_key, sha256_file
from bench.data import ImageDataset, load_dataset
from bench.device import resolve_device
from bench.errors import UserError
from bench.executors import Executor, LocalExecutor
from bench.grids import save_nn_grid, save_sample_figure
from bench.models import Budget, GenerativeModel, Spent, build_model, resolve_model
from bench.progress import progress_bar
from bench.samples import check_samples, load_samples_file
from bench.scoring import ScoringContext, score
from bench.suite import Job, Suite, expand_jobs
from bench.throughput import sweep

SCORING_VERSION = 1  # bump when metric code changes results, to re-score cached jobs
LOSS_HISTORY_POINTS = 200


@dataclass(frozen=True)
class RunOptions:
    out_dir: Path
    tracking_uri: str | None = None
    data_root: Path | None = None
    device: str = "auto"


@dataclass
class JobResult:
    job: Job
    status: str  # FINISHED, FAILED, REUSED
    run_id: str | None = None
    error: str | None = None
    seconds: float = 0.0


class Runner:
    def __init__(self, suite: Suite, opts: RunOptions):
        self.suite = suite
        self.opts = opts
        self.device = resolve_device(opts.device)
        out = opts.out_dir
        try:
            (out / "locks").mkdir(parents=True, exist_ok=True)
            # a unique probe name: workers starting together must not race on one file
            with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
                pass
        except OSError as e:
            msg = f"output folder {out} is not writable ({e.strerror}); pass --out DIR"
            raise UserError(msg) from None
        self.cache = Cache(out / "cache")
        uri = opts.tracking_uri or tracking.default_tracking_uri(out)
        self.client = tracking.client_for(uri)
        artifact_root = (out / "mlruns" / "artifacts") if not opts.tracking_uri else None
        self.exp_id = tracking.experiment_id(self.client, suite.name, artifact_root)
        self.provenance = tracking.provenance_tags(self.device)

    def preflight(self) -> None:
        """Bad input stops the suite before any training: every dataset loads, every
        checkpoint reads and fits its model, every samples file has the dataset's shape,
        and Inception Score has the Inception classifier layer it needs."""
        if "inception_score" in self.suite.metrics:
            from bench.features.inception import require_classifier_layer

            require_classifier_layer(self.device)
        for job in expand_jobs(self.suite):
            data = load_dataset(job.dataset, self.opts.data_root)
            entry = job.entry
            if entry.samples is not None:
                load_samples_file(entry.samples, data)
            elif entry.checkpoint is not None:
                model = build_model(
                    resolve_model(entry.ref), data, dict(entry.options), self.device
                )
                load_checkpoint(model, entry.checkpoint, entry.ref)

    def run(self, executor: Executor | None = None) -> list[JobResult]:
        self.preflight()
        tracking.set_rank_by(self.client, self.exp_id, self.suite.rank_by)
        jobs = expand_jobs(self.suite)
        parent = tracking.start_run(
            self.client,
            self.exp_id,
            f"{self.suite.name} v{self.suite.version}",
            {
                "genbench.kind": "suite",
                "genbench.suite": self.suite.name,
                "genbench.suite_version": self.suite.version,
                **self.provenance,
            },
        )
        tracking.log_params(self.client, parent, {"suite": self.suite.model_dump_json()})
        try:
            results = (executor or LocalExecutor()).run(self, jobs, parent)
        except BaseException:
            self.client.set_terminated(parent, "KILLED")
            raise
        failed = sum(r.status == "FAILED" for r in results)
        self.client.set_terminated(parent, "FAILED" if failed else "FINISHED")
        return results

    # -- one job ------------------------------------------------------------------------

    def run_job(self, job: Job, parent_id: str) -> JobResult:
        start = time.perf_counter()
        try:
            data = load_dataset(job.dataset, self.opts.data_root)
            keys = job_keys(job, data)
        except UserError as e:
            tqdm.write(f"  FAILED: {e}")
            return JobResult(job, "FAILED", error=str(e))
        with FileLock(str(self.opts.out_dir / "locks" / f"{keys['job']}.lock")):
            done = tracking.finished_jobs(self.client, self.exp_id)
            if keys["job"] in done:
                tqdm.write("  done before: reusing its MLflow run")
                return JobResult(job, "REUSED", done[keys["job"]])
            tracking.close_stale_runs(self.client, self.exp_id, keys["job"])
            run_id = tracking.start_run(
                self.client, self.exp_id, job.label, self._job_tags(job, data, keys, parent_id)
            )
            try:
                self._execute(job, data, keys, run_id)
            except Exception as e:
                msg = str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
                msg = msg.strip().splitlines()[0] if msg.strip() else type(e).__name__
                tracking.set_tags(self.client, run_id, {"genbench.error": msg})
                self.client.set_terminated(run_id, "FAILED")
                tqdm.write(f"  FAILED: {msg}")
                return JobResult(job, "FAILED", run_id, msg, time.perf_counter() - start)
            except BaseException:
                self.client.set_terminated(run_id, "KILLED")
                raise
        seconds = time.perf_counter() - start
        return JobResult(job, "FINISHED", run_id, seconds=seconds)

    def _job_tags(self, job: Job, data: ImageDataset, keys: dict, parent_id: str) -> dict:
        cls_module = ""
        if job.entry.samples is None:
            cls_module = resolve_model(job.entry.ref).__module__
        return {
            "mlflow.parentRunId": parent_id,
            "genbench.kind": tracking.JOB_KIND,
            "genbench.job_key": keys["job"],
            "genbench.fit_key": keys["fit"],  # rows that share it share one trained model
            "genbench.suite": job.suite.name,
            "genbench.suite_version": job.suite.version,
            "genbench.dataset": job.dataset,
            "genbench.dataset_hash": data.content_hash,
            "genbench.model": job.entry.name,
            "genbench.model_ref": job.entry.ref if job.entry.samples is None else "samples-file",
            "genbench.reference": str(cls_module == "baselines.sanity").lower(),
            "genbench.seed": str(job.seed),
            **self.provenance,
        }

    def _execute(self, job: Job, data: ImageDataset, keys: dict, run_id: str) -> None:
        suite, entry = job.suite, job.entry
        timings: dict[str, float] = {}
        tracking.log_params(
            self.client,
            run_id,
            {
                "dataset": job.dataset,
                "model": entry.ref,
                "seed": job.seed,
                "sample_seed": sample_seed(job.seed),
                "n_samples": suite.n_samples,
                "budget_steps": suite.budget.steps,
                "budget_seconds": suite.budget.seconds,
                **{f"option.{k}": v for k, v in entry.options.items()},
                **({"checkpoint": entry.checkpoint} if entry.checkpoint else {}),
                **({"samples_file": entry.samples} if entry.samples else {}),
            },
        )
        model = None
        t0 = time.perf_counter()
        if entry.samples is None:
            model, fit_info = self._fit_or_load(job, data, keys["fit"])
            tracking.set_tags(
                self.client,
                run_id,
                {
                    "budget_spent_steps": fit_info["steps"],
                    "budget_spent_seconds": f"{fit_info['seconds']:.1f}",
                    "fit_cached": str(fit_info["cached"]).lower(),
                    "nfe": getattr(model, "nfe", "unknown"),
                    "sample_options": json.dumps(getattr(model, "sample_options", {})),
                },
            )
            if fit_info["losses"]:
                tracking.log_history(self.client, run_id, "train_loss", fit_info["losses"])
        timings["fit_or_load_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        samples = self._samples(job, data, model, keys["samples"])
        timings["sample_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        ctx = ScoringContext(data, samples, self.device)
        metrics = score(ctx, suite.metrics)
        if model is not None:
            metrics.update(self._model_metrics(job, data, model, ctx.artifacts))
        timings["score_s"] = time.perf_counter() - t0
        tracking.log_metrics(self.client, run_id, metrics)
        tracking.set_tags(
            self.client,
            run_id,
            {
                **{f"genbench.{k}": v for k, v in ctx.provenance.items()},
                **{f"time.{k}": f"{v:.2f}" for k, v in timings.items()},
            },
        )
        self._log_artifacts(job, data, samples, metrics, run_id, ctx.artifacts)
        self.client.set_terminated(run_id, "FINISHED")
        shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        tqdm.write(f"  {shown}")

    def _fit_or_load(self, job: Job, data: ImageDataset, fit_key: str):
        entry, suite = job.entry, job.suite
        cls = resolve_model(entry.ref)
        torch.manual_seed(job.seed)  # weight initialization draws from the global RNG
        model = build_model(cls, data, dict(entry.options), self.device)
        if entry.checkpoint is not None:
            load_checkpoint(model, entry.checkpoint, entry.ref)
            return model, {"steps": 0, "seconds": 0.0, "losses": [], "cached": True}
        cached = self.cache.load("checkpoints", fit_key)
        if cached is not None:
            load_checkpoint_dict(model, cached["state"], "the cached checkpoint", entry.ref)
            return model, {**cached["info"], "cached": True}
        budget = Budget(suite.budget.steps, suite.budget.seconds)
        losses: list[tuple[int, float]] = []
        bar = progress_bar(total=budget.steps, desc=f"  fit {entry.name}", unit="step")

        def progress(step: int, values: dict[str, float]) -> None:
            if "loss" in values:
                losses.append((step, float(values["loss"])))
                bar.set_postfix(loss=f"{float(values['loss']):.4g}", refresh=False)
            bar.update(step - bar.n)

        t0 = time.perf_counter()
        spent = model.fit(data, budget, seed=job.seed, progress=progress) or Spent()
        bar.close()
        seconds = time.perf_counter() - t0
        info = {"steps": int(spent.steps), "seconds": seconds, "losses": thin(losses)}
        self.cache.save("checkpoints", fit_key, {"state": model.state_dict(), "info": info})
        return model, {**info, "cached": False}

    def _samples(self, job: Job, data: ImageDataset, model, sample_key: str) -> torch.Tensor:
        cached = self.cache.load("samples", sample_key)
        if cached is not None:
            return cached
        if model is None:
            samples = load_samples_file(job.entry.samples, data)
            if len(samples) < job.suite.n_samples:
                raise UserError(
                    f"{job.entry.samples} holds {len(samples)} samples; the suite asks for "
                    f"n_samples={job.suite.n_samples}"
                )
            samples = samples[: job.suite.n_samples]
        else:
            g = torch.Generator().manual_seed(sample_seed(job.seed))
            with torch.inference_mode():
                samples = model.sample(
                    job.suite.n_samples, generator=g, batch_size=job.suite.sample_batch_size
                )
        samples = check_samples(samples, data, job.suite.n_samples)
        self.cache.save("samples", sample_key, samples)
        return samples

    def _model_metrics(
        self, job: Job, data: ImageDataset, model, artifacts: dict
    ) -> dict[str, float]:
        out: dict[str, float] = {}
        metrics = job.suite.metrics
        if "bits_per_dim" in metrics and data.kind == "images":
            bpd = bits_per_dim(model, data.test.x, job.suite.sample_batch_size)
            if bpd is not None:
                out["bits_per_dim_test"] = bpd
        if "throughput" in metrics:
            sizes = job.suite.throughput_batch_sizes
            rows = sweep(model, self.device, sizes, repeats=3, count_flops=False)
            largest = rows[-1]
            out[f"throughput_img_s_b{int(largest['batch_size'])}_{self.device.type}"] = largest[
                "img_s"
            ]
            artifacts["throughput"] = rows
        return out

    def _log_artifacts(self, job, data, samples, metrics, run_id, artifacts) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            self._write_artifacts(Path(tmp), job, data, samples, metrics, artifacts)
            for f in sorted(Path(tmp).iterdir()):
                self.client.log_artifact(run_id, str(f))

    def _write_artifacts(self, folder: Path, job, data, samples, metrics, artifacts) -> None:
        save_sample_figure(samples, data.kind, folder / "samples.png", data.train.x)
        if data.kind == "images" and "memorization" in job.suite.metrics:
            save_nn_grid(samples, data.train.x, folder / "nearest_neighbours.png")
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        if artifacts:
            (folder / "report_data.json").write_text(json.dumps(artifacts, indent=2))
        config = {
            "dataset": job.dataset,
            "seed": job.seed,
            "model": json.loads(job.entry.model_dump_json()),
            "suite": json.loads(job.suite.model_dump_json()),
        }
        (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


# -- helpers ------------------------------------------------------------------------------

_WORKER_RUNNERS: dict[tuple[str, RunOptions], Runner] = {}


def execute_job(suite: Suite, opts: RunOptions, parent_id: str, job: Job) -> JobResult:
    """Run one job in whatever process this is (a Ray worker, a SLURM task, ...), reusing
    one Runner per process and suite."""
    key = (suite.model_dump_json(), opts)
    if key not in _WORKER_RUNNERS:
        _WORKER_RUNNERS[key] = Runner(suite, opts)
    return _WORKER_RUNNERS[key].run_job(job, parent_id)


def sample_seed(seed: int) -> int:
    """Sampling gets its own stream, so that changing the training budget keeps it fixed."""
    return 1_000_003 * seed + 17


@functools.cache  # read once per process: a file edited mid-run must not split a sweep
def source_hash(cls: type) -> str:
    try:
        return sha256_file(inspect.getsourcefile(cls))[:16]
    except (TypeError, OSError):
        return "unknown"


def files_hash(path: Path) -> str:
    if path.is_file():
        return sha256_file(path)
    return hash_key(
        [(str(p.relative_to(path)), sha256_file(p)) for p in sorted(path.rglob("*")) if p.is_file()]
    )


def job_keys(job: Job, data: ImageDataset) -> dict[str, str]:
    """fit -> samples -> job: each key hashes everything that determines its result."""
    suite, entry = job.suite, job.entry
    if entry.samples is not None:
        fit = "none"
        samples = hash_key(
            "samples-file", data.content_hash, files_hash(entry.samples), suite.n_samples
        )
    else:
        cls = resolve_model(entry.ref)
        ckpt = files_hash(entry.checkpoint) if entry.checkpoint else None
        # Options a family marks as sampling-only (e.g. DDIM steps) reuse one trained model.
        sample_only = set(getattr(cls, "SAMPLE_OPTIONS", ()))
        fit = hash_key(
            "fit",
            data.content_hash,
            entry.ref,
            source_hash(cls),
            {k: v for k, v in entry.options.items() if k not in sample_only},
            suite.budget.model_dump(),
            job.seed,
            ckpt,
        )
        samples = hash_key("samples", fit, suite.n_samples, suite.sample_batch_size, entry.options)
    metrics = sorted(suite.metrics)
    # The label is part of the job: two entries with one config are two leaderboard rows
    # (they share the trained model and samples through the fit and sample keys).
    job_key = hash_key(
        "job", samples, metrics, suite.throughput_batch_sizes, SCORING_VERSION, entry.name
    )
    return {"fit": fit, "samples": samples, "job": job_key}


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
        first = str(e).strip().splitlines()[0]
        raise UserError(f"{what} does not match model {ref!r}: {first}") from None


def bits_per_dim(model, x: torch.Tensor, batch_size: int) -> float | None:
    """Mean bits per dimension on `x` from the model's bits_per_dim or log_prob (nats)."""
    fn = getattr(model, "bits_per_dim", None)
    log_prob = getattr(model, "log_prob", None)
    if fn is None and log_prob is None:
        return None
    dims = x[0].numel()
    values = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            if fn is not None:
                v = torch.as_tensor(fn(xb)).float().reshape(-1)
                values.append(v.expand(len(xb)) if v.numel() == 1 else v)
            else:
                nats = torch.as_tensor(log_prob(xb)).float().reshape(-1)
                values.append(-nats / (dims * np.log(2.0)))
    return float(torch.cat([v.cpu() for v in values]).mean())
