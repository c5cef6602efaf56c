"""The genbench command line: run, report, list (and eval, fid, stats, throughput)."""

from __future__ import annotations

import collections
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
    str | None, typer.Option(help="MLflow tracking URI [default: sqlite store in OUT/mlruns]")
]


@app.command()
def run(
    suite_file: Annotated[Path, typer.Argument(help="suite YAML, e.g. suites/digits.yaml")],
    out: Annotated[Path | None, typer.Option(help="output folder [default: reports/SUITE]")] = None,
    tracking_uri: TrackingUri = None,
    data_root: Annotated[Path | None, typer.Option(help="folder with mnist/cifar10 files")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N")] = "auto",
    jobs: Annotated[
        int | None,
        typer.Option(help="jobs at once, in worker processes (local) [default: physical cores]"),
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
        str | None, typer.Option(help="join this Ray cluster (e.g. auto) [default: start one]")
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
    from bench.suite import load_suite

    suite = load_suite(suite_file)  # first: a rejected suite file imports no torch
    out = out or Path("reports") / suite.name
    from bench.plan import plan_suite

    plan = plan_suite(suite, out, data_root, tracking_uri)  # nor do bad data or samples files
    from bench.executors import executor_options, make_executor, suite_executor_options

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
    chosen = suite.executor
    name = executor or (chosen.name if chosen else "local")
    from_suite = chosen.options if chosen and chosen.name == name else {}
    # nor do bad executor options
    options = executor_options(
        name, flags, executor_option, suite_executor_options(name, from_suite)
    )
    jobs_executor = make_executor(name, **options)
    from bench.job import RunOptions
    from bench.runner import Runner

    runner = Runner(suite, RunOptions(out, tracking_uri, data_root, device), plan)
    results = runner.run(jobs_executor)
    from bench.report.render import write_report  # after preflight, which may reject the run

    boards = write_report(runner.store, out, suite.name)
    print_leaderboards(boards)
    failed = [r for r in results if r.status == "FAILED"]
    typer.echo(f"\n{run_summary(results)} Leaderboard: {out}/leaderboard.md|.csv|.html")
    if failed:
        for r in failed:
            typer.echo(f"FAILED {r.job.label}: {r.error}", err=True)
        raise typer.Exit(1)


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
    from bench.metrics import check_rank_metric

    rank_by = None
    if primary is not None:
        rank_by = [m.strip() for m in primary.split(",") if m.strip()]
        for m in rank_by:
            try:
                check_rank_metric(m)
            except ValueError as e:
                raise UserError(f"--primary: {e}") from None
    if out is None:
        if suite is None:
            raise UserError("pass --out DIR (the folder genbench run wrote) or --suite NAME")
        out = Path("reports") / suite
    if tracking_uri is None:
        db = out / "mlruns" / "mlflow.db"
        if not db.exists():
            raise UserError(f"no MLflow store at {db}; run `genbench run` or pass --tracking-uri")
    if compare is not None:  # checked before anything is written
        before_db = compare / "mlruns" / "mlflow.db"
        if not before_db.exists():
            raise UserError(f"--compare {compare}: no MLflow store at {before_db}")
    from bench.record import open_output_store
    from bench.report.leaderboard import build_leaderboards
    from bench.report.render import write_report

    before = None
    if compare is not None:
        before = build_leaderboards(open_output_store(compare).records(suite), rank_by)
    boards = write_report(open_output_store(out, tracking_uri), out, suite, rank_by)
    if not boards:
        raise UserError("the MLflow store holds no genbench job runs")
    print_leaderboards(boards)
    typer.echo(f"\nLeaderboard: {out}/leaderboard.md|.csv|.html")
    if before is not None:
        from bench.cache import atomic_write_bytes
        from bench.report.compare import compare as compare_boards

        text = compare_boards(boards, before, after=str(out), before=str(compare))
        atomic_write_bytes(out / "compare.md", text.encode())
        typer.echo("\n" + text)


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
    import json

    from bench.data import dataset_arrays
    from bench.samples import read_samples, sample_labels, source_indices

    if (samples is None) == (model is None):
        raise UserError("give --samples FILE or --model PREFIX:PATH (one of them)")
    arrays = dataset_arrays(dataset, data_root)  # bad data or samples: refused before torch loads
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

    data = load_dataset(dataset, data_root)
    extractor = default_extractor(data) if features == "auto" else features
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    paths = {weights_network(extractor, names): weights.resolve()} if weights is not None else {}
    if weights is not None and not weights.is_file():
        raise UserError(f"--weights {weights}: no such file")
    count = n if model is not None else len(samples_read)
    planned = plan(names, data, [extractor], count, paths)  # bad input: one line before work
    if model is not None:
        from bench.device import resolve_device
        from bench.job import sample_pretrained

        opts = json_options(options)
        samples_read, labels = sample_pretrained(model, opts, data, n, seed, resolve_device(device))
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
    scored = score_data_parallel(data, x, device, extractor, names, nproc, paths, labels, rows)
    if scored is None:  # a torchrun rank other than 0: rank 0 prints
        return
    # after scoring, so that a refusal made while scoring (a missing weights file) is one line
    small_n = small_n_warnings(planned, data, len(x))
    for line in small_n:
        typer.echo(f"warning: {line}", err=True)
    ctx, results = scored
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "metrics": results,
                    "n": len(x),
                    "dataset": dataset,
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
    import json

    if save_stats:
        write_stats(
            path_a, Path(path_b), features, mode, dataset, data_root, batch_size, device, weights
        )
        return
    check_hub_weights(features, path_a, path_b)
    from bench.fid import fid_between

    result = fid_between(
        path_a,
        path_b,
        features=features,
        weights=weights,
        mode=mode.value,
        batch_size=batch_size,
        device=device,
        dataset=dataset,
        data_root=data_root,
    )
    typer.echo(json.dumps(result, indent=2) if json_out else f"FID: {result['fid']}")


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
    write_stats(source, out, features, mode, dataset, data_root, batch_size, device, weights)


def check_hub_weights(features: str, *inputs: str) -> None:
    """When Inception features are computed (an input is not a statistics file), a file in
    torch hub's place that cannot be its weights is refused before torch loads."""
    from bench.npz import is_stats_file

    if features == "inception" and not all(is_stats_file(p) for p in inputs):
        from bench.features.inception_hub import check_hub_file

        check_hub_file()


def write_stats(
    source, out: Path, features, mode, dataset, data_root, batch_size, device, weights
) -> None:
    check_hub_weights(features, source)
    from bench.fid import write_source_stats

    made = write_source_stats(
        source,
        out,
        features=features,
        weights=weights,
        mode=mode.value,
        batch_size=batch_size,
        device=device,
        dataset=dataset,
        data_root=data_root,
    ).protocol
    mode = f" (mode {made.mode})" if made.mode else ""
    typer.echo(
        f"{out}: {made.dim}-d {made.extractor} statistics{mode}, n={made.n}, from {made.source}"
    )


def json_options(options: str) -> dict:
    """--options: a JSON object of plain values, checked as a suite's options are."""
    import json

    try:
        opts = json.loads(options)
    except ValueError as e:
        raise UserError(f"bad --options: {e}") from None
    if not isinstance(opts, dict):
        raise UserError("--options must be a JSON object and --batch-sizes positive integers")
    from bench.suite import check_option

    for key, value in opts.items():  # JSON's NaN and Infinity too, as in a suite
        try:
            check_option(key, value)
        except ValueError as e:
            raise UserError(f"--options: {e}") from None
    return opts


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
    import json

    try:
        sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    except ValueError as e:
        raise UserError(f"bad --options or --batch-sizes: {e}") from None
    if not sizes or min(sizes) < 1:
        raise UserError("--options must be a JSON object and --batch-sizes positive integers")
    opts = json_options(options)
    from bench.data import load_dataset
    from bench.device import resolve_device
    from bench.job import load_checkpoint
    from bench.models import Budget, build_model, resolve_model
    from bench.throughput import sweep

    dev = resolve_device(device)
    data = load_dataset(dataset, data_root)
    net = build_model(resolve_model(model), data, opts, dev)
    if checkpoint is not None:
        load_checkpoint(net, checkpoint, model)
    else:  # an untrained model samples exactly as fast; zero steps sets it up
        net.fit(data, Budget(steps=0), seed=0, progress=lambda step, values: None)
    rows = sweep(net, dev, sizes, dtype=dtype, compile=compile, repeats=repeats)
    if json_out:  # NaN (not measured) as null: strict JSON readers reject bare NaN
        clean = [{k: None if v != v else v for k, v in r.items()} for r in rows]
        typer.echo(json.dumps({"model": model, "dataset": dataset, "rows": clean}, indent=2))
        return
    typer.echo(f"{model} on {dataset}, {dev}, {dtype}, compile {'on' if compile else 'off'}")
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
    if compile:
        typer.echo(f"compile time (excluded above): {rows[0]['compile_s']:.1f} s")
    disturbed = [r for r in rows if r["disturbed"]]
    for r in disturbed:
        typer.echo(f"! batch {int(r['batch_size'])}: {r['disturbance']}")
    if disturbed:
        typer.echo("! disturbed figures: re-measure on a quiet machine (more --repeats help)")


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
    from bench.data import dataset_names
    from bench.features import extractor_names
    from bench.metrics import describe
    from bench.models import describe_models

    if what == ListWhat.metrics:
        from bench.metrics.costs import cost_line, costs_header, read_costs

        costs = read_costs()
        typer.echo(costs_header(costs))
        for name, columns, summary, suite_names in describe():
            cost = f"\n    {cost_line(suite_names, costs)}" if suite_names else ""
            typer.echo(f"{name}: {columns}\n    {summary}{cost}")
    elif what == ListWhat.executors:
        from bench.executors import describe_executors

        typer.echo("\n".join(describe_executors()))
    elif what == ListWhat.models:
        for name, text in describe_models():
            typer.echo(f"{name:<16} {text}".rstrip())
    else:
        names = dataset_names() if what == ListWhat.datasets else extractor_names()
        typer.echo("\n".join(names))


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
    dataset: Annotated[str | None, typer.Option(help="real images [default: the runs']")] = None,
    models: Annotated[
        str | None, typer.Option(help="comma-separated labels [default: the learned models]")
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
    from bench.errors import Stopped
    from bench.study.config import StudyConfig, check_config, check_references
    from bench.study.hype import minimum_note
    from bench.study.names import samples_args
    from bench.study.quality import exclusion_note
    from bench.study.results import check_study_name

    cfg = StudyConfig(
        mode,
        trials,
        practice,
        images,
        display_px,
        fixation_ms,
        mask_ms,
        start_ms,
        min_ms,
        max_ms,
        step_ms,
        3,
        reversals,
        block,
        seed,
        show_class,
        attention,
        max_missed,
        min_rt_ms,
        show_source,
    )
    check_config(cfg)  # these checks run before the server's modules (torch among them) load
    check_study_name(name)
    check_references(references)
    samples_args(samples or [])
    from bench.study.serve import (
        StudyRequest,
        check_port_free,
        finish,
        links,
        open_study,
        results_link,
        serve,
    )

    labels = [m.strip() for m in models.split(",") if m.strip()] if models else None
    req = StudyRequest(out, name, cfg, raters, samples or [], dataset, labels, references)
    if not score:
        check_port_free(host, port)  # before the study is created: a refusal writes nothing
    the_study, run_ids = open_study(req)
    if not score:
        typer.echo("Rater links (one per person; a link resumes where its rater stopped):")
        for link in links(the_study, host, port):
            typer.echo(f"  {link}")
        typer.echo("Results so far, for you alone (never send this link to raters):")
        typer.echo(f"  -> {results_link(the_study, host, port)}")
        typer.echo("Ctrl-C stops the server and writes the scores.")
        try:
            serve(the_study, host, port)
        except (Stopped, KeyboardInterrupt):
            pass  # the signal uvicorn passes on after its graceful stop: score the study
    for label, values in finish(req, the_study, run_ids).items():
        shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        notes = [n for n in (exclusion_note(values), minimum_note(values)) if n]
        typer.echo("\n  ! ".join([f"{label}: {shown}", *notes]))


def run_summary(results) -> str:
    """How many jobs were scored now (and whether they trained their model or took it from
    the cache), reused whole from an earlier run, or failed."""
    count = collections.Counter(r.status for r in results)
    fits = collections.Counter(r.fit for r in results if r.status == "FINISHED")
    return (
        f"{len(results)} jobs: {count['FINISHED']} run ({fits['trained']} trained a model, "
        f"{fits['cache']} sampled a cached one), {count['REUSED']} reused (finished before), "
        f"{count['FAILED']} failed."
    )


def print_leaderboards(boards) -> None:
    from bench.report.render import to_markdown

    typer.echo(to_markdown(boards))


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
