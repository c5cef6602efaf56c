"""Everything that talks to MLflow. One experiment per suite, one parent run per suite
invocation, one child run per job; the leaderboard is rebuilt from these runs alone."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import subprocess
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from filelock import FileLock

from bench.errors import UserError

JOB_KIND = "job"
RANK_BY_TAG = "genbench.rank_by"
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
warnings.filterwarnings("ignore", module="mlflow")


def _quiet_mlflow() -> None:
    """MLflow sets up its own INFO handlers on import; keep the console to our output."""
    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)


def default_tracking_uri(out_dir: Path) -> str:
    return f"sqlite:///{(out_dir / 'mlruns' / 'mlflow.db').resolve()}"


def client_for(uri: str):
    """An MlflowClient for `uri`; a store that cannot be opened is a UserError."""
    from mlflow.tracking import MlflowClient

    _quiet_mlflow()

    lock = contextlib.nullcontext()
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        # Two processes creating the same SQLite store at once race on its schema.
        lock = FileLock(str(db) + ".init.lock")
    try:
        with lock:
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot open MLflow tracking URI {uri!r}: {first}") from None
    return client


def experiment_id(client, suite_name: str, artifact_root: Path | None) -> str:
    exp = client.get_experiment_by_name(suite_name)
    if exp is not None:
        return exp.experiment_id
    location = artifact_root.resolve().as_uri() if artifact_root else None
    try:
        return client.create_experiment(suite_name, artifact_location=location)
    except Exception:  # another process created it first
        return client.get_experiment_by_name(suite_name).experiment_id


def set_rank_by(client, exp_id: str, rank_by: list[str]) -> None:
    """The suite's ranking lives on its experiment: the latest `genbench run` sets it, and
    the report reads it back (runs reused from older invocations follow it too)."""
    client.set_experiment_tag(exp_id, RANK_BY_TAG, ",".join(rank_by))


def package_versions() -> dict[str, str]:
    out = {}
    for pkg in ("genbench", "torch", "torchvision", "numpy", "scipy", "mlflow", "pytorch-fid"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


def git_commit(path: Path) -> str:
    try:
        res = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        return res.stdout.strip() if res.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model and the cores this process may use."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model
            )
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cores} cores"


def provenance_tags(device: torch.device) -> dict[str, str]:
    tags = {f"version.{k}": v for k, v in package_versions().items()}
    tags.update(
        {
            "git_commit": git_commit(Path(__file__).resolve().parent),
            "python": platform.python_version(),
            "torch_cuda": str(torch.version.cuda),
            "device": str(device),
            "device_name": device_name(device),
            "hostname": platform.node(),
        }
    )
    return tags


def start_run(client, exp_id: str, name: str, tags: dict[str, str]) -> str:
    run = client.create_run(exp_id, run_name=name, tags=tags)
    return run.info.run_id


def log_params(client, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i : i + 100])


def log_metrics(client, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
    from mlflow.entities import Metric

    ts = int(pd.Timestamp.now().timestamp() * 1000)
    items = [Metric(k, float(v), ts, step) for k, v in metrics.items()]
    for i in range(0, len(items), 500):
        client.log_batch(run_id, metrics=items[i : i + 500])


def log_history(client, run_id: str, key: str, values: list[tuple[int, float]]) -> None:
    from mlflow.entities import Metric

    items = [Metric(key, float(v), 0, step) for step, v in values]
    for i in range(0, len(items), 1000):
        client.log_batch(run_id, metrics=items[i : i + 1000])


def set_tags(client, run_id: str, tags: dict[str, Any]) -> None:
    from mlflow.entities import RunTag

    client.log_batch(run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])


def finished_jobs(client, exp_id: str) -> dict[str, str]:
    """job key -> run id of every FINISHED job run in the experiment."""
    runs = search_runs(client, exp_id, f"tags.`genbench.kind` = '{JOB_KIND}'")
    return {
        r.data.tags["genbench.job_key"]: r.info.run_id
        for r in runs
        if r.info.status == "FINISHED" and "genbench.job_key" in r.data.tags
    }


def close_stale_runs(client, exp_id: str, job_key: str) -> None:
    """Runs of this job left RUNNING by a killed process become KILLED (the caller holds
    the job's lock, so no live process owns them)."""
    runs = search_runs(client, exp_id, f"tags.`genbench.job_key` = '{job_key}'")
    for r in runs:
        if r.info.status == "RUNNING":
            client.set_terminated(r.info.run_id, "KILLED")


def search_runs(client, exp_id: str, filter_string: str = "") -> list:
    runs, token = [], None
    while True:
        page = client.search_runs(
            [exp_id], filter_string=filter_string, max_results=1000, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def load_job_runs(client, suite_name: str | None = None) -> pd.DataFrame:
    """One row per FINISHED or FAILED job run: tags (prefixed `tag.`), params and metrics."""
    exps = client.search_experiments()
    if suite_name is not None:
        exps = [e for e in exps if e.name == suite_name]
        if not exps:
            names = ", ".join(e.name for e in client.search_experiments()) or "none"
            raise UserError(f"no suite {suite_name!r} in this MLflow store; it has: {names}")
    rows = []
    for exp in exps:
        for r in search_runs(client, exp.experiment_id, f"tags.`genbench.kind` = '{JOB_KIND}'"):
            if r.info.status not in ("FINISHED", "FAILED"):
                continue
            row = {
                "run_id": r.info.run_id,
                "status": r.info.status,
                "suite": exp.name,
                "rank_by": exp.tags.get(RANK_BY_TAG, ""),
                "start_time": r.info.start_time,
                "artifact_uri": r.info.artifact_uri,
            }
            row.update({f"tag.{k}": v for k, v in r.data.tags.items()})
            row.update({f"param.{k}": v for k, v in r.data.params.items()})
            row.update(r.data.metrics)
            rows.append(row)
    return pd.DataFrame(rows)
