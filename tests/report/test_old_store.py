"""An MLflow store written by an older genbench still reports: the same leaderboard.csv,
cell for cell, as the genbench that wrote it (tests/fixtures/make_old_store.py made both with
genbench as it was before #27's registry change)."""

import gzip
from pathlib import Path

from conftest import run_cli

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "old_store"


def test_a_store_written_before_the_registry_change_reports_the_same_leaderboard(tmp_path):
    (tmp_path / "mlruns").mkdir()
    db = gzip.decompress((OLD / "mlflow.db.gz").read_bytes())
    (tmp_path / "mlruns" / "mlflow.db").write_bytes(db)
    res = run_cli("report", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "| vae |" in res.stdout and "| ref | copier |" in res.stdout
    written = (tmp_path / "leaderboard.csv").read_text()
    assert written == (OLD / "leaderboard.csv").read_text()
    assert written.count("\n") == 7  # a header and six rows: three models on two datasets
