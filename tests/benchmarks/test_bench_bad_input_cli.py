"""How long each bad input of tests/test_bad_input.py's catalogue takes to be refused through
the CLI, a fresh process each (#18 item 10: every bad-input exit under 2 s). One round per
case; the refusal itself is checked by test_bad_input.py, here only that it still exits 2.
Run on an otherwise idle machine:
    pytest tests/benchmarks/test_bench_bad_input_cli.py --benchmark-only \
      --benchmark-columns=mean --benchmark-sort=mean
"""

import pytest
from conftest import run_cli
from test_bad_input import CASES


@pytest.mark.parametrize("case", list(CASES))
def test_refusal_time(benchmark, tmp_path, case):
    make, extra, _ = CASES[case]
    made = make(tmp_path)
    args = [a.format(tmp=tmp_path) for a in extra]
    if isinstance(made, list):
        command = made
    else:
        out = [] if "--out" in args else ["--out", str(tmp_path / "out")]
        command = ["run", made, *out]

    def refuse():
        env = {"TORCH_HOME": str(tmp_path / "torch"), "HOME": str(tmp_path / "home")}
        return run_cli(*command, *args, env=env, cwd=tmp_path)

    res = benchmark.pedantic(refuse, rounds=1, iterations=1)
    assert res.returncode == 2, res.stderr
