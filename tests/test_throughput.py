"""Throughput timing logic, checked with models whose cost is known."""

import time

import pytest
import torch

from bench.errors import UserError
from bench.throughput import autocast, flops_per_sample, measure_throughput, sweep

CPU = torch.device("cpu")


class FakeClock:
    """A clock that only moves when the model says it spent time."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_known_cost_gives_exact_figures():
    clock = FakeClock()
    per_batch = {64: 0.5}  # seconds per call
    calls = []

    def sample_batch(b):
        calls.append(b)
        clock.now += per_batch[b] + (2.0 if len(calls) == 1 else 0.0)  # slow first call

    m = measure_throughput(sample_batch, 64, CPU, warmup=2, repeats=5, clock=clock)
    assert m["img_s"] == pytest.approx(128.0)
    assert m["ms_per_img"] == pytest.approx(1000 * 0.5 / 64)
    assert m["first_call_s"] == pytest.approx(2.5)  # warm-up is timed apart, not in the median
    assert len(calls) == 2 + 5


def test_median_ignores_an_outlier_repeat():
    clock = FakeClock()
    costs = iter([1.0, 0.2, 0.2, 9.0, 0.2, 0.2])

    def sample_batch(b):
        clock.now += next(costs)

    m = measure_throughput(sample_batch, 10, CPU, warmup=1, repeats=5, clock=clock)
    assert m["img_s"] == pytest.approx(10 / 0.2)


class SleepModel:
    """Sleeps a fixed time per batch: real wall time, known lower bound."""

    nfe = 3

    def __init__(self, seconds):
        self.seconds = seconds
        self.net = torch.nn.Linear(4, 4)

    def sample(self, n, *, generator, batch_size):
        time.sleep(self.seconds)
        x = torch.randn(n, 4, generator=generator)
        for _ in range(self.nfe):
            x = self.net(x)
        return x


def test_sweep_reports_every_field_and_counts_flops():
    rows = sweep(SleepModel(0.01), CPU, [2, 8], repeats=2)
    assert [r["batch_size"] for r in rows] == [2, 8]
    for r in rows:
        # time.sleep never returns early, so the rate is bounded by batch / sleep time
        assert 0 < r["img_s"] <= r["batch_size"] / 0.01
        assert r["nfe"] == 3 and r["dtype"] == "fp32" and r["compile"] is False
        assert r["flops_per_sample"] == pytest.approx(3 * 2 * 4 * 4)  # three 4x4 matmuls
        assert r["matmul_peak_flop_s"] > 0 and 0 <= r["share_of_matmul_peak"] < 1


def test_flop_counter_on_a_known_network():
    net = torch.nn.Conv2d(1, 8, 3, padding=1)
    flops = flops_per_sample(lambda b: net(torch.zeros(b, 1, 8, 8)), 4)
    assert flops == pytest.approx(2 * 8 * 9 * 64)


def test_unsupported_settings_are_errors():
    with pytest.raises(UserError, match="fp16 sampling needs a CUDA device"):
        autocast(CPU, "fp16")
    with pytest.raises(UserError, match="unknown dtype"):
        autocast(CPU, "fp8")
    assert autocast(CPU, "bf16") is not None


def test_cli_throughput_json_and_errors():
    import json

    from conftest import run_cli

    res = run_cli(
        "throughput",
        "--model",
        "pixel-gaussian",
        "--dataset",
        "digits",
        "--batch-sizes",
        "4,8",
        "--repeats",
        "2",
        "--json",
    )
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)["rows"]
    assert [r["batch_size"] for r in rows] == [4, 8] and all(r["img_s"] > 0 for r in rows)
    bad = run_cli(
        "throughput",
        "--model",
        "pixel-gaussian",
        "--dataset",
        "digits",
        "--dtype",
        "fp16",
        "--device",
        "cpu",
    )
    assert bad.returncode == 2 and "fp16 sampling needs a CUDA device" in bad.stderr
