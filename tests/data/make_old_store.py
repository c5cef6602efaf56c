"""Write old_store/: the MLflow store of a tiny suite as genbench wrote it before #27's
registry change (commit a4f4dec, where bench/names.py still existed), and the leaderboard.csv
that genbench wrote from it then. tests/test_old_store.py rebuilds the leaderboard from the
store with today's `genbench report` and compares. Run from the repository root of a git
checkout (a throwaway worktree of the old commit is made and removed):

    OMP_NUM_THREADS=1 python tests/data/make_old_store.py
"""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OLD_COMMIT = "a4f4dec"
SUITE = """\
name: old-store
datasets: [ring8, grid25]
seeds: [0, 1]
n_samples: 300
budget: {steps: 30}
metrics: [modes, prdc, fd_pixels, throughput]
rank_by: [modes_captured, modes_hq]
throughput_batch_sizes: [1, 300]
models:
  - name: vae
  - name: copier
  - name: pixel-gaussian
"""


def main() -> None:
    dest = HERE / "old_store"
    with tempfile.TemporaryDirectory() as tmp:
        tree, out = Path(tmp) / "old", Path(tmp) / "out"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), OLD_COMMIT], check=True)
        try:
            (Path(tmp) / "suite.yaml").write_text(SUITE)
            env = {**os.environ, "PYTHONPATH": str(tree)}
            cmd = [sys.executable, "-m", "bench.cli", "run", str(Path(tmp) / "suite.yaml")]
            subprocess.run([*cmd, "--out", str(out), "--jobs", "1"], env=env, cwd=tree, check=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], check=True)
        db = out / "mlruns" / "mlflow.db"
        with sqlite3.connect(db) as con:
            con.execute("VACUUM")
        dest.mkdir(exist_ok=True)
        (dest / "mlflow.db.gz").write_bytes(gzip.compress(db.read_bytes(), mtime=0))
        shutil.copy(out / "leaderboard.csv", dest / "leaderboard.csv")


if __name__ == "__main__":
    main()
