"""Sampling throughput (PROTOCOLS.md): images per second at a stated batch size, after
warm-up, with the device synchronized around the timed region (CUDA events on GPU),
median over repeats; plus ms per image, network evaluations per sample, dtype, compile
on/off with the compile time apart, peak memory, FLOPs per sample and the achieved share
of the device's dense matmul throughput measured in the same process."""

from __future__ import annotations

import contextlib
import resource
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from bench.device import synchronize
from bench.errors import UserError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

SampleBatch = Callable[[int], object]


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
) -> dict[str, float]:
    """Time `sample_batch(batch_size)`: img/s and ms/img from the median repeat, the first
    (warm-up) call's extra time as `first_call_s`, and peak memory."""
    if warmup < 1 or repeats < 1:
        raise UserError("throughput needs warmup >= 1 and repeats >= 1")
    rss_before = _rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    first = timed(lambda: sample_batch(batch_size), device, clock)
    for _ in range(warmup - 1):
        sample_batch(batch_size)
    times = [timed(lambda: sample_batch(batch_size), device, clock) for _ in range(repeats)]
    median = statistics.median(times)
    if median <= 0:
        raise UserError("sampling took no measurable time; use a larger batch size")
    out = {
        "batch_size": float(batch_size),
        "img_s": batch_size / median,
        "ms_per_img": 1000.0 * median / batch_size,
        "median_s": median,
        "first_call_s": first,
        "repeats": float(repeats),
    }
    if device.type == "cuda":
        out["peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        out["peak_rss_growth_mb"] = max(0.0, _rss_mb() - rss_before)
    return out


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
    """The device's dense matmul throughput in this process, as the reference for how much
    of the hardware sampling uses."""
    size = size or (4096 if device.type == "cuda" else 1024)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up
    seconds = statistics.median(timed(lambda: a @ b, device) for _ in range(repeats))
    return 2 * size**3 / seconds


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
        with ctx, torch.inference_mode():
            return model.sample(b, generator=generator, batch_size=b)

    peak = matmul_flops_per_s(device, DTYPES[dtype]) if count_flops else float("nan")
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
                "compile": compile,
                "compile_s": compile_s,
                "flops_per_sample": flops,
                "achieved_flop_s": flops * m["img_s"],
                "matmul_peak_flop_s": peak,
                "share_of_matmul_peak": flops * m["img_s"] / peak,
                "device": str(device),
            }
        )
    return rows
