"""Where a job's own inputs come from: the plug-in's package version and module source, and
the sha256 of checkpoint and samples files, so a row can be traced to exactly what made it."""

from __future__ import annotations

import functools
import inspect
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

from bench.cache import hash_key, sha256_file


@functools.cache  # read once per process: a file edited mid-run must not split a sweep
def source_hash(cls: type) -> str:
    """sha256 (16 hex digits) of the file that defines `cls`, or "unknown"."""
    try:
        return sha256_file(inspect.getsourcefile(cls))[:16]
    except (TypeError, OSError):
        return "unknown"


def package_version(cls: type) -> str:
    """`dist==version` of the installed distribution that holds `cls`'s top-level package,
    or "" for a module that no distribution installed (e.g. one on PYTHONPATH)."""
    top = cls.__module__.partition(".")[0]
    dists = _distributions().get(top, [])
    for dist in sorted(set(dists)):
        try:
            return f"{dist}=={version(dist)}"
        except PackageNotFoundError:
            continue
    return ""


@functools.cache  # scans every installed distribution: once per process
def _distributions() -> dict[str, list[str]]:
    return packages_distributions()


def files_hash(path: Path) -> str:
    """sha256 of a file; of a folder, a hash of its files' relative paths and sha256s."""
    path = Path(path)
    if path.is_file():
        return _sha256_unchanged(path.resolve(), *_signature(path))
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return hash_key(
        [(str(p.relative_to(path)), _sha256_unchanged(p.resolve(), *_signature(p))) for p in files]
    )


def _signature(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=4096)  # keyed on size and mtime: an edited file is read again
def _sha256_unchanged(path: Path, size: int, mtime_ns: int) -> str:
    return sha256_file(path)
