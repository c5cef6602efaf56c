"""The genbench command line: parsing only; each command's work is one function in
bench/commands/."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from bench.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Benchmark generative image models on one protocol: run suites, score samples, "
    "build leaderboards.",
)


TrackingUri = Annotated[
    str | None, typer.Option(help="MLflow tracking URI \\[default: sqlite store in OUT/mlruns]")
]


@app.command()
def run(
    suite_file: Annotated[Path, typer.Argument(help="suite YAML, e.g. suites/digits.yaml")],
    out: Annotated[
        Path | None, typer.Option(help="output folder \\[default: reports/SUITE]")
    ] = None,
    tracking_uri: TrackingUri = None,
    data_root: Annotated[Path | None, typer.Option(help="folder with mnist/cifar10 files")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N")] = "auto",
    jobs: Annotated[
        int | None,
        typer.Option(help="jobs at once, in worker processes (local) \\[default: physical cores]"),
    ] = None,
    # -- scaling out (README "Scaling out"): where the jobs run -------------------------------
    executor: Annotated[
        str | None,
        typer.Option(
            help="where jobs run: local, ray, slurm (genbench list executors); wins over the "
            "suite's executor: (default: the suite's, else local)"
        ),
    ] = None,
    executor_option: Annotated[
        list[str] | None,
        typer.Option(
            help="KEY=VALUE, an option of the executor (repeat it); wins over the flags, which "
            "win over the suite's executor: options"
        ),
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="join this Ray cluster (e.g. auto) \\[default: start one]")
    ] = None,
    cpus_per_job: Annotated[
        float | None, typer.Option(help="CPUs per job (ray, slurm; default 1)")
    ] = None,
    gpus_per_job: Annotated[
        float | None, typer.Option(help="GPUs per job (ray, slurm; default 0)")
    ] = None,
    slurm_partition: Annotated[str | None, typer.Option(help="SLURM partition")] = None,
    slurm_time: Annotated[
        int | None, typer.Option(help="SLURM time limit per job, minutes (default 60)")
    ] = None,
    slurm_mem_gb: Annotated[float | None, typer.Option(help="SLURM memory per job, GB")] = None,
    max_retries: Annotated[
        int | None, typer.Option(help="reruns of a job whose worker died (ray, slurm; default 1)")
    ] = None,
) -> None:
    """Train or load every model of a suite, sample, score, track in MLflow, write the
    leaderboard. Finished jobs are reused; an interrupted run resumes."""
    from bench.commands.run import RunRequest, run_suite

    flags = {
        "address": ray_address,
        "cpus_per_job": cpus_per_job,
        "gpus_per_job": gpus_per_job,
        "partition": slurm_partition,
        "time": slurm_time,
        "mem_gb": slurm_mem_gb,
        "max_retries": max_retries,
        "jobs": jobs,
    }
    run_suite(
        RunRequest(
            suite_file=suite_file,
            out=out,
            tracking_uri=tracking_uri,
            data_root=data_root,
            device=device,
            executor=executor,
            executor_flags=flags,
            executor_options=executor_option,
        )
    )


@app.command()
def report(
    out: Annotated[Path | None, typer.Option(help="folder genbench run wrote")] = None,
    tracking_uri: TrackingUri = None,
    suite: Annotated[str | None, typer.Option(help="only this suite's experiment")] = None,
    primary: Annotated[
        str | None,
        typer.Option(help="metric that ranks the models; more, comma-separated, break ties"),
    ] = None,
    compare: Annotated[
        Path | None,
        typer.Option(
            help="the output folder before (--out is after): write OUT/compare.md of the changes"
        ),
    ] = None,
) -> None:
    """Rebuild the leaderboard (md, csv, html) from MLflow alone."""
    from bench.commands.report import rebuild_report

    rebuild_report(out, tracking_uri, suite, primary, compare)


class Mode(str, Enum):
    clean = "clean"
    legacy = "legacy"


@app.command("eval")
def eval_(
    dataset: Annotated[str, typer.Option(help="dataset to score against, e.g. digits")],
    samples: Annotated[
        Path | None,
        typer.Option(
            help=".npz of uint8 images (or an image folder); an .npz may hold `labels`, the "
            "class asked for each image, for conditional metrics"
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="instead of --samples, a model that comes trained, sampled here: "
            "torchscript:G.pt, onnx:G.onnx or diffusers:FOLDER"
        ),
    ] = None,
    options: Annotated[
        str, typer.Option(help='--model\'s options as JSON, e.g. {"z_dim": 128, ...}')
    ] = "{}",
    n: Annotated[int, typer.Option(min=2, help="samples to draw from --model")] = 1000,
    seed: Annotated[int, typer.Option(min=0, help="--model's sampling seed, as a suite's")] = 0,
    features: Annotated[
        str,
        typer.Option(
            help="feature space (`genbench list extractors`, or module:Class); auto = the "
            "dataset's classifier for labelled images, inception for other images, raw points"
        ),
    ] = "auto",
    metrics: Annotated[
        str,
        typer.Option(help="comma-separated metric groups (`genbench list metrics`)"),
    ] = "fd,kid,prdc,memorization",
    weights: Annotated[
        Path | None,
        typer.Option(
            help="weights file of the --features extractor (dinov2_*, clip_vitl14_336), else "
            "of the network a metric loads (cmmd's CLIP, lpips' VGG16)"
        ),
    ] = None,
    data_root: Annotated[Path | None, typer.Option(help="folder with mnist/cifar10 files")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    nproc: Annotated[
        int, typer.Option(help="data-parallel processes (gloo on CPU, NCCL on GPUs); or torchrun")
    ] = 1,
) -> None:
    """Score pre-generated samples (or samples drawn here from a model that comes trained)
    against a dataset, every metric from one feature pass."""
    from bench.commands.eval import EvalRequest, evaluate

    evaluate(
        EvalRequest(
            dataset=dataset,
            samples=samples,
            model=model,
            options=options,
            n=n,
            seed=seed,
            features=features,
            metrics=metrics,
            weights=weights,
            data_root=data_root,
            device=device,
            json_out=json_out,
            nproc=nproc,
        )
    )


FidInput = Annotated[
    str,
    typer.Argument(
        help="image folder, .npz of uint8 images, .npz of statistics (genbench's, pytorch-fid's "
        "--save-stats or clean-fid's), or a dataset split: digits:train, digits:test "
        "(a dataset alone is its train split)"
    ),
]
FidFeaturesOption = Annotated[
    str,
    typer.Option(
        help="inception (FID), classifier (the dataset's classifier: --dataset, or the dataset "
        "given as an input), pixels, or any extractor of `genbench list extractors` "
        "(dinov2_vitl14, clip_vitl14_336, ... with --weights)"
    ),
]
WeightsOption = Annotated[
    Path | None, typer.Option(help="weights file of the --features extractor (DINOv2, CLIP)")
]
ModeOption = Annotated[
    Mode,
    typer.Option(
        help="Inception preprocessing: clean = clean-fid's default 'clean' pipeline (PIL bicubic "
        "resize), legacy = pytorch-fid's (bilinear resize; `python -m pytorch_fid` numbers: the "
        "drop-in mode, and the protocol of a statistics file without genbench's record)"
    ),
]
DatasetOption = Annotated[
    str | None, typer.Option(help="whose classifier, for --features classifier")
]
DataRoot = Annotated[Path | None, typer.Option(help="folder with mnist/cifar10 files")]
DeviceOption = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N")]


@app.command()
def fid(
    path_a: FidInput,
    path_b: Annotated[
        str, typer.Argument(help="the same kinds as PATH_A; with --save-stats, the output .npz")
    ],
    features: FidFeaturesOption = "inception",
    weights: WeightsOption = None,
    mode: ModeOption = Mode.clean,
    save_stats: Annotated[
        bool,
        typer.Option(
            "--save-stats", help="as pytorch-fid: write PATH_A's statistics to PATH_B (.npz)"
        ),
    ] = False,
    dataset: DatasetOption = None,
    data_root: DataRoot = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 50,
    device: DeviceOption = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Fréchet distance between two inputs (`python -m pytorch_fid A B` with --mode legacy).

    Statistics files carry their protocol; files that contradict the requested features,
    mode or weights, or each other, are refused. A file without genbench's record
    (pytorch-fid's --save-stats) is pytorch-fid's protocol: --mode legacy.

    FID depends on n: compare numbers at equal n only."""
    from bench.commands.fid import run_fid
    from bench.commands.stats import FeatureProtocol

    protocol = FeatureProtocol(
        features=features,
        weights=weights,
        mode=mode.value,
        dataset=dataset,
        data_root=data_root,
        batch_size=batch_size,
        device=device,
    )
    run_fid(path_a, path_b, protocol, save_stats=save_stats, json_out=json_out)


@app.command()
def stats(
    source: Annotated[
        str,
        typer.Argument(
            help="dataset (its train split), DATASET:train|test, image folder or .npz of images"
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="statistics file to write (.npz)")],
    features: FidFeaturesOption = "inception",
    weights: WeightsOption = None,
    mode: ModeOption = Mode.clean,
    dataset: DatasetOption = None,
    data_root: DataRoot = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 50,
    device: DeviceOption = "auto",
) -> None:
    """Reference statistics: mu and sigma in pytorch-fid's .npz, plus genbench's protocol
    record (extractor, weights sha256, mode, n, source, genbench version), which pytorch-fid
    ignores: only --mode legacy files give pytorch-fid's numbers there."""
    from bench.commands.stats import FeatureProtocol, write_stats

    protocol = FeatureProtocol(
        features=features,
        weights=weights,
        mode=mode.value,
        dataset=dataset,
        data_root=data_root,
        batch_size=batch_size,
        device=device,
    )
    write_stats(source, out, protocol)


@app.command()
def throughput(
    model: Annotated[str, typer.Option(help="registry name, entry point or module:Class")],
    dataset: Annotated[str, typer.Option(help="dataset whose shape the model samples")],
    checkpoint: Annotated[
        Path | None, typer.Option(help="weights to load (speed does not depend on them)")
    ] = None,
    options: Annotated[str, typer.Option(help='model options as JSON, e.g. {"steps": 25}')] = "{}",
    batch_sizes: Annotated[str, typer.Option(help="comma-separated")] = "1,16,64,256",
    dtype: Annotated[str, typer.Option(help="fp32, bf16 or fp16")] = "fp32",
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the networks")] = False,
    repeats: Annotated[int, typer.Option(min=1, help="timed repeats per batch size")] = 5,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N")] = "auto",
    data_root: Annotated[Path | None, typer.Option(help="folder with mnist/cifar10 files")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Sampling throughput per batch size: img/s, ms/img, NFE, FLOPs, memory, compile time."""
    from bench.commands.throughput import ThroughputRequest, measure_throughput

    measure_throughput(
        ThroughputRequest(
            model=model,
            dataset=dataset,
            checkpoint=checkpoint,
            options=options,
            batch_sizes=batch_sizes,
            dtype=dtype,
            compile=compile,
            repeats=repeats,
            device=device,
            data_root=data_root,
            json_out=json_out,
        )
    )


samples_app = typer.Typer(
    no_args_is_help=True, help="Get a finished job's samples out of a suite's output folder."
)
app.add_typer(samples_app, name="samples")


@samples_app.command("export")
def samples_export(
    out: Annotated[Path, typer.Option(help="the folder genbench run wrote")],
    model: Annotated[str, typer.Option(help="the model's label on the leaderboard")],
    to: Annotated[
        Path,
        typer.Option(
            "--to",
            help="a new .npz file (images; labels of a conditional model, source_indices of "
            "translations) or a new folder of PNG files (with labels.txt, source_indices.txt)",
        ),
    ],
    dataset: Annotated[
        str | None, typer.Option(help="which dataset's job, when the suite has several")
    ] = None,
) -> None:
    """Write a model's samples (its lowest seed's job) as .npz or PNG files."""
    from bench.commands.samples_export import export_samples

    n, written = export_samples(out, model, to, dataset=dataset)
    typer.echo(f"{n} samples of {model!r}: {written}")


class ListWhat(str, Enum):
    models = "models"
    datasets = "datasets"
    metrics = "metrics"
    extractors = "extractors"
    executors = "executors"


@app.command("list")
def list_(
    what: Annotated[
        ListWhat, typer.Argument(help="models, datasets, metrics, extractors or executors")
    ],
) -> None:
    """List the registered models (marked class-conditional or reference), datasets, metrics
    (with their columns), extractors or executors (with their options)."""
    from bench.commands.listing import list_names

    list_names(what.value)


@app.command()
def study(
    out: Annotated[
        Path,
        typer.Option(
            help="a suite's output folder (its models are shown); answers go to OUT/study"
        ),
    ] = Path("reports/study"),
    samples: Annotated[
        list[str] | None, typer.Option(help="LABEL=PATH of an .npz or image folder; repeat it")
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="real images \\[default: the runs']")] = None,
    models: Annotated[
        str | None, typer.Option(help="comma-separated labels \\[default: the learned models]")
    ] = None,
    references: Annotated[
        str, typer.Option(help="without --models: one (a copier, the sanity check), all, none")
    ] = "one",
    name: Annotated[str, typer.Option(help="study name: reopening it resumes it")] = "default",
    mode: Annotated[str, typer.Option(help="inf (HYPE-infinity) or time (HYPE-time)")] = "inf",
    raters: Annotated[int, typer.Option(help="rater links (reopen with more to add)")] = 1,
    trials: Annotated[int, typer.Option(help="scored trials per rater")] = 100,
    practice: Annotated[int, typer.Option(help="practice trials with feedback")] = 10,
    images: Annotated[int, typer.Option(help="generated images per model in the pool")] = 100,
    display_px: Annotated[int, typer.Option(help="shown size of every image")] = 256,
    fixation_ms: Annotated[int, typer.Option()] = 500,
    mask_ms: Annotated[int, typer.Option(help="noise mask after the image (time)")] = 500,
    start_ms: Annotated[int, typer.Option(help="staircase start (time)")] = 500,
    min_ms: Annotated[int, typer.Option(help="shortest exposure (time)")] = 100,
    max_ms: Annotated[int, typer.Option(help="longest exposure (time)")] = 1000,
    step_ms: Annotated[int, typer.Option(help="staircase step (time)")] = 10,
    reversals: Annotated[int, typer.Option(help="threshold: mean of the last N reversals")] = 6,
    block: Annotated[int, typer.Option(help="staircase moves after each N trials (time)")] = 4,
    seed: Annotated[int, typer.Option()] = 0,
    show_class: Annotated[
        bool, typer.Option("--show-class", help="show each image's class (conditional models)")
    ] = False,
    show_source: Annotated[
        bool,
        typer.Option("--show-source", help="paired translation: each image beside its source"),
    ] = False,
    attention: Annotated[
        int, typer.Option(help="attention checks per rater (noise images, known to be fake)")
    ] = 0,
    max_missed: Annotated[
        int, typer.Option(help="exclude a rater who misses more attention checks than this")
    ] = 0,
    min_rt_ms: Annotated[
        int, typer.Option(help="exclude a rater whose median response time is under this")
    ] = 0,
    host: Annotated[str, typer.Option(help="0.0.0.0 opens it to the LAN")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8765,
    score: Annotated[bool, typer.Option("--score", help="score the answers, log, exit")] = False,
) -> None:
    """Serve a real-or-fake study page (HYPE) for a suite's models; on Ctrl-C (or with
    --score) write the scores to OUT/study and to the models' MLflow job runs."""
    from bench.commands.study import StudyCommand, run_study
    from bench.study.config import StudyConfig

    cfg = StudyConfig(
        mode=mode,
        trials=trials,
        practice=practice,
        images=images,
        display_px=display_px,
        fixation_ms=fixation_ms,
        mask_ms=mask_ms,
        start_ms=start_ms,
        min_ms=min_ms,
        max_ms=max_ms,
        step_ms=step_ms,
        reversals=reversals,
        block=block,
        seed=seed,
        show_class=show_class,
        attention=attention,
        max_missed=max_missed,
        min_rt_ms=min_rt_ms,
        show_source=show_source,
    )
    run_study(
        StudyCommand(
            out=out,
            cfg=cfg,
            name=name,
            raters=raters,
            samples=samples or [],
            dataset=dataset,
            models=models,
            references=references,
            host=host,
            port=port,
            score=score,
        )
    )


def main() -> None:
    import signal

    from bench.errors import Stopped

    def stop(signum, frame):
        raise Stopped(signum)

    # SLURM, Kubernetes and `timeout` send SIGTERM: unwind so that runs are marked KILLED
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        from bench.threads import TRAINING_COMMANDS, configure_threads

        command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
        configure_threads(trains=command in TRAINING_COMMANDS)  # before torch loads
        app()
    except UserError as e:
        typer.echo(f"genbench: error: {e}", err=True)
        sys.exit(2)
    except (Stopped, KeyboardInterrupt) as e:
        signum = e.signum if isinstance(e, Stopped) else signal.SIGINT
        what = "interrupted" if signum == signal.SIGINT else "terminated"
        typer.echo(f"genbench: {what}; run the same command again to resume", err=True)
        sys.exit(128 + signum)


if __name__ == "__main__":
    main()
