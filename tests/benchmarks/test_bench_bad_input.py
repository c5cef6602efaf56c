"""How long refusing a hostile input takes (#17: a YAML bomb "refused within a second"):
load_suite on a 1 KB billion-laughs suite, and on the same suite without the bomb, and the
samples check on an .npz that declares more images than the limit. Run with
`pytest tests/benchmarks/test_bench_bad_input.py --benchmark-only`."""

import numpy as np
import pytest

from bench.data import load_dataset
from bench.errors import UserError
from bench.samples import load_samples_file
from bench.suite import load_suite

SUITE = """\
name: bomb
datasets: [digits]
budget: {steps: 1}
metrics: [fd_pixels]
models:
  - name: copier
"""
BOMB = "    options:\n      a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"      a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)
)


def refused(fn, *args) -> str:
    with pytest.raises(UserError) as info:
        fn(*args)
    return str(info.value)


def test_plain_suite_loads(benchmark, tmp_path):
    (tmp_path / "s.yaml").write_text(SUITE)
    assert benchmark(load_suite, tmp_path / "s.yaml").name == "bomb"


def test_yaml_bomb_is_refused(benchmark, tmp_path):
    (tmp_path / "s.yaml").write_text(SUITE + BOMB)
    assert "aliases are expanded" in benchmark(refused, load_suite, tmp_path / "s.yaml")


def test_npz_past_the_image_limit_is_refused(benchmark, tmp_path):
    np.savez_compressed(tmp_path / "s.npz", np.zeros((250_000, 1, 8, 8), np.uint8))
    digits = load_dataset("digits")
    message = benchmark(refused, load_samples_file, tmp_path / "s.npz", digits)
    assert "at most 200000" in message
