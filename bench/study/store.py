"""Answers on disk: one SQLite database per study in the output folder, in WAL mode with
synchronous=FULL, so an answer the server has acknowledged survives a crash. Every request
opens its own connection; raters write distinct rows and SQLite serializes the writers."""

from __future__ import annotations

import secrets
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from bench.study.config import StudyConfig
from bench.study.plan import ATTENTION, PoolImage, Trial
from bench.study.secret import new_secret

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY, source TEXT NOT NULL, idx INTEGER NOT NULL, practice INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS raters (
    token TEXT PRIMARY KEY, number INTEGER NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    token TEXT NOT NULL, idx INTEGER NOT NULL, image_id TEXT NOT NULL, model TEXT NOT NULL,
    is_real INTEGER NOT NULL, practice INTEGER NOT NULL, PRIMARY KEY (token, idx));
CREATE TABLE IF NOT EXISTS answers (
    token TEXT NOT NULL, idx INTEGER NOT NULL, answer_real INTEGER NOT NULL,
    correct INTEGER NOT NULL, exposure_ms INTEGER, measured_ms REAL, frame_ms REAL,
    flagged INTEGER NOT NULL, rt_ms REAL, created REAL NOT NULL, PRIMARY KEY (token, idx));
"""


@dataclass(frozen=True)
class Answer:
    index: int
    answer_real: bool
    correct: bool
    exposure_ms: int | None
    measured_ms: float | None
    frame_ms: float | None
    flagged: bool
    rt_ms: float | None


def connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def init_study(
    db: Path,
    cfg: StudyConfig,
    models: list[str],
    dataset: str,
    secret: bytes,
    pool: list[PoolImage],
    raters: dict[str, list[Trial]],
) -> None:
    """Write a new study (its settings, secret, image pool and first raters) in one
    transaction."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with closing(connect(db)) as conn:
        conn.executescript(SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        meta = {"config": cfg.to_json(), "models": "\n".join(models), "dataset": dataset}
        meta["secret"] = secret.hex()
        conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        conn.executemany(
            "INSERT INTO images VALUES (?, ?, ?, ?)",
            [(p.id, p.source, p.index, int(p.practice)) for p in pool],
        )
        for token, trials in raters.items():
            _insert_rater(conn, token, trials)
        conn.execute("COMMIT")


def read_meta(db: Path) -> tuple[StudyConfig, list[str], str] | None:
    """(config, models, dataset) of an existing study, None when there is none yet."""
    if not db.exists():
        return None
    with closing(connect(db)) as conn:
        conn.executescript(SCHEMA)
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if "config" not in meta:
        return None
    return StudyConfig.from_json(meta["config"]), meta["models"].split("\n"), meta["dataset"]


def read_secret(db: Path) -> bytes:
    """The study's secret; a study made before studies had one gets one now (its raters
    keep the trials they were given)."""
    with closing(connect(db)) as conn:
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('secret', ?)", (new_secret().hex(),))
        (value,) = conn.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
    return bytes.fromhex(value)


def owner_token(db: Path) -> str:
    """The token of the study's results page, drawn when first asked for and kept."""
    token = secrets.token_urlsafe(24)
    with closing(connect(db)) as conn:
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('owner', ?)", (token,))
        (value,) = conn.execute("SELECT value FROM meta WHERE key = 'owner'").fetchone()
    return value


def read_pool(db: Path) -> list[PoolImage]:
    with closing(connect(db)) as conn:
        rows = conn.execute("SELECT id, source, idx, practice FROM images ORDER BY rowid")
        return [PoolImage(i, s, int(x), bool(p)) for i, s, x, p in rows.fetchall()]


def rater_tokens(db: Path) -> list[str]:
    with closing(connect(db)) as conn:
        return [t for (t,) in conn.execute("SELECT token FROM raters ORDER BY number")]


def add_rater(db: Path, token: str, trials: list[Trial]) -> None:
    with closing(connect(db)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        _insert_rater(conn, token, trials)
        conn.execute("COMMIT")


def _insert_rater(conn: sqlite3.Connection, token: str, trials: list[Trial]) -> None:
    (n,) = conn.execute("SELECT COUNT(*) FROM raters").fetchone()
    conn.execute("INSERT INTO raters VALUES (?, ?, ?)", (token, n + 1, time.time()))
    conn.executemany(
        "INSERT INTO trials VALUES (?, ?, ?, ?, ?, ?)",
        [(token, t.index, t.image_id, t.model, int(t.is_real), int(t.practice)) for t in trials],
    )


def read_trials(db: Path, token: str) -> list[Trial]:
    with closing(connect(db)) as conn:
        rows = conn.execute(
            "SELECT t.idx, t.image_id, t.model, t.is_real, t.practice, i.source = ? "
            "FROM trials t JOIN images i ON i.id = t.image_id WHERE t.token = ? ORDER BY t.idx",
            (ATTENTION, token),
        ).fetchall()
    return [Trial(i, img, m, bool(r), bool(p), bool(c)) for i, img, m, r, p, c in rows]


def read_answers(db: Path, token: str) -> list[Answer]:
    with closing(connect(db)) as conn:
        rows = conn.execute(
            "SELECT idx, answer_real, correct, exposure_ms, measured_ms, frame_ms, flagged, "
            "rt_ms FROM answers WHERE token = ? ORDER BY idx",
            (token,),
        ).fetchall()
    return [Answer(i, bool(a), bool(c), e, m, f, bool(fl), rt) for i, a, c, e, m, f, fl, rt in rows]


def write_answer(db: Path, token: str, a: Answer) -> bool:
    """Store the answer to the rater's next trial, durably. False when `a.index` is not the
    next unanswered trial (a resent answer, or one from a stale page)."""
    with closing(connect(db)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        (n,) = conn.execute("SELECT COUNT(*) FROM answers WHERE token = ?", (token,)).fetchone()
        if a.index != n:
            conn.execute("ROLLBACK")
            return False
        conn.execute(
            "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                token,
                a.index,
                int(a.answer_real),
                int(a.correct),
                a.exposure_ms,
                a.measured_ms,
                a.frame_ms,
                int(a.flagged),
                a.rt_ms,
                time.time(),
            ),
        )
        conn.execute("COMMIT")
    return True


def all_judgements(db: Path) -> list[tuple]:
    """(token, image_id, model, is_real, correct, flagged, exposure_ms) of every scored
    answer (no practice, no attention check), in answer order per rater."""
    with closing(connect(db)) as conn:
        return conn.execute(
            "SELECT a.token, t.image_id, t.model, t.is_real, a.correct, a.flagged, a.exposure_ms "
            "FROM answers a JOIN trials t ON a.token = t.token AND a.idx = t.idx "
            "JOIN images i ON i.id = t.image_id "
            "WHERE t.practice = 0 AND i.source != ? ORDER BY a.token, a.idx",
            (ATTENTION,),
        ).fetchall()


def quality_rows(db: Path) -> list[tuple[str, bool, bool, float | None]]:
    """(token, is an attention check, correct, rt_ms) of every answer past practice."""
    with closing(connect(db)) as conn:
        rows = conn.execute(
            "SELECT a.token, i.source = ?, a.correct, a.rt_ms "
            "FROM answers a JOIN trials t ON a.token = t.token AND a.idx = t.idx "
            "JOIN images i ON i.id = t.image_id WHERE t.practice = 0",
            (ATTENTION,),
        ).fetchall()
    return [(token, bool(check), bool(correct), rt) for token, check, correct, rt in rows]
