"""scripts/gpu-check --dry-run runs the GPU check's code paths on the CPU at tiny sizes, so CI
keeps the script working on machines without a GPU."""

import os
import subprocess
import sys

from conftest import ROOT


def test_gpu_check_dry_run_passes_every_check_and_prints_one_table():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu-check"), "--dry-run"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = proc.stdout.splitlines()
    assert table[0].startswith("genbench gpu-check on CPU (dry run)")
    rows = {line.split("  ")[0].strip(): line for line in table[2:]}
    for check in ("inception features", "dinov2 features", "eval --nproc 1", "diffusers pipeline"):
        assert " ok " in rows[check], rows.get(check)
    assert " ok " in rows["throughput ddpm fp32"] and " ok " in rows["throughput dcgan bf16"]
    assert not [line for line in table[2:] if "FAIL" in line]
