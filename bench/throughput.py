"""Sampling throughput (PROTOCOLS.md): images per second at a stated batch size, after
warm-up, with the device synchronized around the timed region (CUDA events on GPU),
median over repeats; plus ms per image, network evaluations per sample, dtype, compile
on/off with the compile time apart, peak memory, FLOPs per sample and the achieved share
of the device's dense matmul throughput measured in the same process.

Every figure carries how far it can be trusted: the dispersion of its repeats and how busy
the machine's CPUs were with other processes while it was timed, and `disturbed` when
either passes a threshold below (the checks pyperf applies before it calls a benchmark
unstable, plus one on load, which pyperf can only advise about)."""

from __future__ import annotations

import contextlib
import math
import resource
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from bench.device import cpu_seconds, dtype_is_native, synchronize
from bench.errors import UserError
from bench.models import is_conditional
from bench.threads import available_cpus

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

SampleBatch = Callable[[int], object]
CpuSource = Callable[[], tuple[float, float] | None]

# A figure is `disturbed` when any of these holds (README "Throughput under load"):
RSD_LIMIT = 0.10  # std of the repeat times >= 10% of their mean (pyperf `check`)
OUTLIER_LIMIT = 0.50  # a repeat >= 50% away from the mean (pyperf `check`)
LOAD_LIMIT = 0.10  # other processes used >= 10% of the CPUs' time while we were timed
# /proc/stat counts in 1/100 s per CPU, so the others' share is uncertain by about
# 2 / (100 * window); below this window that error reaches half of LOAD_LIMIT and no load
# is reported.
MIN_LOAD_WINDOW_S = 0.4
# Fast samplers are timed for more repeats than asked until the window reaches
# MIN_LOAD_WINDOW_S, so that the load is measured rather than unknown; at most this many.
MAX_REPEATS = 1000
CALIBRATION_S = 0.05  # a matmul this long is large enough to show the device's rate


def timed(fn: Callable[[], object], device: torch.device, clock=time.perf_counter) -> float:
    """Seconds one call takes, the device synchronized before and after."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        synchronize(device)
        start.record()
        fn()
        end.record()
        synchronize(device)
        return start.elapsed_time(end) / 1000.0
    t0 = clock()
    fn()
    return clock() - t0


def measure_throughput(
    sample_batch: SampleBatch,
    batch_size: int,
    device: torch.device,
    *,
    warmup: int = 1,
    repeats: int = 5,
    clock=time.perf_counter,
    cpu_source: CpuSource = cpu_seconds,
    cpus: int | None = None,
) -> dict[str, float | bool | str]:
    """Time `sample_batch(batch_size)`: img/s and ms/img from the median repeat (at least
    `repeats`, more until the timed window is MIN_LOAD_WINDOW_S long), the first
    (warm-up) call's extra time as `first_call_s`, and peak memory; with the repeats'
    dispersion and the other processes' CPU use during them (`dispersion`, `cpu_load`) and
    whether that makes the figure `disturbed` (with the reasons in `disturbance`).

    cpu_source: cumulative (machine busy CPU s, own CPU s), as bench.device.cpu_seconds;
    cpus: the CPUs the load is a share of [default: those this process may use]."""
    if warmup < 1 or repeats < 1:
        raise UserError("throughput needs warmup >= 1 and repeats >= 1")
    rss_before = _rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    first = timed(lambda: sample_batch(batch_size), device, clock)
    for _ in range(warmup - 1):
        sample_batch(batch_size)
    cpu_before, wall_before = cpu_source(), clock()
    times = [timed(lambda: sample_batch(batch_size), device, clock) for _ in range(repeats)]
    while clock() - wall_before < MIN_LOAD_WINDOW_S and len(times) < MAX_REPEATS:
        times.append(timed(lambda: sample_batch(batch_size), device, clock))
    load = cpu_load(cpu_before, cpu_source(), clock() - wall_before, cpus or available_cpus())
    median = statistics.median(times)
    if median <= 0:
        raise UserError("sampling took no measurable time; use a larger batch size")
    spread = dispersion(times)
    reasons = disturbance(times, load["load"])
    out = {
        "batch_size": float(batch_size),
        "img_s": batch_size / median,
        "ms_per_img": 1000.0 * median / batch_size,
        "median_s": median,
        "first_call_s": first,
        "repeats": float(len(times)),
        **spread,
        **load,
        "disturbed": bool(reasons),
        "disturbance": "; ".join(reasons),
    }
    if device.type == "cuda":
        out["peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        out["peak_rss_growth_mb"] = max(0.0, _rss_mb() - rss_before)
    return out


def dispersion(times: list[float]) -> dict[str, float]:
    """rsd: standard deviation over mean of the repeat times (nan for one repeat);
    spread: (max - min) / median."""
    mean = statistics.fmean(times)
    rsd = statistics.stdev(times) / mean if len(times) > 1 else math.nan
    return {"rsd": rsd, "spread": (max(times) - min(times)) / statistics.median(times)}


def cpu_load(
    before: tuple[float, float] | None,
    after: tuple[float, float] | None,
    wall_s: float,
    cpus: int,
) -> dict[str, float]:
    """Other processes' CPU use between two cpu_seconds() readings: `other_cpus` (CPUs
    they kept busy on average) and `load` (that over the CPUs we may use); nan when the
    readings are missing or the window is too short to tell (MIN_LOAD_WINDOW_S)."""
    if before is None or after is None or wall_s < MIN_LOAD_WINDOW_S:
        return {"other_cpus": math.nan, "load": math.nan}
    others = max(0.0, (after[0] - before[0]) - (after[1] - before[1]))
    return {"other_cpus": others / wall_s, "load": others / wall_s / cpus}


def disturbance(times: list[float], load: float) -> list[str]:
    """Why a measurement cannot be trusted as a clean figure (empty when it can)."""
    reasons = []
    mean = statistics.fmean(times)
    if len(times) > 1 and statistics.stdev(times) >= RSD_LIMIT * mean:
        reasons.append(
            f"repeats vary: std is {statistics.stdev(times) / mean:.0%} of the mean "
            f"(limit {RSD_LIMIT:.0%})"
        )
    worst = max(times, key=lambda t: abs(t - mean))
    if abs(worst - mean) >= OUTLIER_LIMIT * mean:
        reasons.append(
            f"a repeat took {worst:.3g} s against a mean of {mean:.3g} s "
            f"(limit {OUTLIER_LIMIT:.0%} away)"
        )
    if math.isnan(load):  # unmeasured is not quiet
        reasons.append("the other processes' CPU load while timed could not be measured")
    elif load >= LOAD_LIMIT:
        reasons.append(
            f"other processes used {load:.0%} of the CPUs while timed (limit {LOAD_LIMIT:.0%})"
        )
    return reasons


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def flops_per_sample(sample_batch: SampleBatch, batch_size: int) -> float:
    """FLOPs of one sampling call divided by the batch (torch.utils.flop_counter: counts
    matmuls and convolutions, the dense work)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        sample_batch(batch_size)
    return counter.get_total_flops() / batch_size


def matmul_flops_per_s(
    device: torch.device, dtype: torch.dtype, *, size: int | None = None, repeats: int = 5
) -> float:
    """The device's dense matmul throughput in `dtype` in this process.

    size: the matrices' side [default: 4096 on CUDA, 1024 on the CPU, or smaller where one
    product takes over CALIBRATION_S there, as with an emulated dtype (bf16 without native
    support ran at 0.2 GFLOP/s, a minute for the default CPU measurement)]."""

    def product(n: int) -> Callable[[], object]:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        return lambda: a @ b

    if size is None:
        size, largest = 256, (4096 if device.type == "cuda" else 1024)
        while size < largest and timed(product(size), device) < CALIBRATION_S:
            size *= 2
    mm = product(size)
    mm()  # warm-up
    seconds = statistics.median(timed(mm, device) for _ in range(repeats))
    return 2 * size**3 / seconds


def matmul_peak(device: torch.device, dtype_name: str) -> dict[str, float | str]:
    """The reference for how much of the hardware sampling in `dtype_name` uses: the faster
    of dense matmuls in that dtype and in fp32. Where the dtype is emulated (bf16 on a CPU
    without avx512_bf16/amx), its matmul takes a slow generic path, and a share of that
    rate read 300-390% (issue #18); the same arithmetic can always run at the fp32 rate."""
    rates = {"fp32": matmul_flops_per_s(device, torch.float32)}
    if dtype_name != "fp32":
        rates[dtype_name] = matmul_flops_per_s(device, DTYPES[dtype_name])
    best = max(rates, key=rates.get)
    return {"matmul_peak_flop_s": rates[best], "matmul_peak_dtype": best}


def autocast(device: torch.device, dtype_name: str):
    """A context that runs sampling in `dtype_name`; unsupported combinations are errors."""
    if dtype_name not in DTYPES:
        raise UserError(f"unknown dtype {dtype_name!r}; use {', '.join(DTYPES)}")
    dtype = DTYPES[dtype_name]
    if dtype is torch.float32:
        return contextlib.nullcontext()
    if device.type == "cuda":
        if dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
            raise UserError(f"bf16 is not supported on {torch.cuda.get_device_name(device)}")
    elif dtype is torch.float16:
        raise UserError("fp16 sampling needs a CUDA device; use fp32 or bf16 on the CPU")
    return torch.autocast(device.type, dtype=dtype)


def compile_modules(model: object) -> list[str]:
    """torch.compile every nn.Module attribute of the model in place; returns their names."""
    names = []
    for name, value in vars(model).items():
        if isinstance(value, nn.Module):
            setattr(model, name, torch.compile(value))
            names.append(name)
    if not names:
        raise UserError(f"{type(model).__name__} has no nn.Module attribute to compile")
    return names


def sweep(
    model,
    device: torch.device,
    batch_sizes: list[int],
    *,
    dtype: str = "fp32",
    compile: bool = False,
    repeats: int = 5,
    seed: int = 0,
    count_flops: bool = True,
) -> list[dict]:
    """Throughput of `model.sample` at each batch size under one dtype/compile setting."""
    ctx = autocast(device, dtype)
    compile_s = 0.0
    if compile:
        compile_modules(model)
    generator = torch.Generator().manual_seed(seed)

    def sample_batch(b: int):
        # a class-conditional model is timed on class-balanced labels, as a suite asks them
        labels = {"labels": torch.arange(b) % model.num_classes} if is_conditional(model) else {}
        with ctx, torch.inference_mode():
            return model.sample(b, **labels, generator=generator, batch_size=b)

    no_peak = {"matmul_peak_flop_s": math.nan, "matmul_peak_dtype": ""}
    peak = matmul_peak(device, dtype) if count_flops else no_peak
    native = dtype_is_native(device, DTYPES[dtype])
    rows = []
    for i, bs in enumerate(batch_sizes):
        m = measure_throughput(sample_batch, bs, device, repeats=repeats)
        if compile and i == 0:
            compile_s = max(0.0, m["first_call_s"] - m["median_s"])
        flops = flops_per_sample(sample_batch, bs) if count_flops else float("nan")
        rows.append(
            {
                **m,
                "nfe": float(getattr(model, "nfe", float("nan"))),
                "dtype": dtype,
                "dtype_native": native,
                "compile": compile,
                "compile_s": compile_s,
                "flops_per_sample": flops,
                "achieved_flop_s": flops * m["img_s"],
                **peak,
                "share_of_matmul_peak": flops * m["img_s"] / peak["matmul_peak_flop_s"],
                "device": str(device),
            }
        )
    return rows
