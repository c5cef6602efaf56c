"""Where a job's own inputs come from: the plug-in's package version and module source, and
the sha256 of checkpoint and samples files, so a row can be traced to exactly what made it."""

from __future__ import annotations

import functools
import inspect
import json
import sys
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions, version
from pathlib import Path
from urllib.parse import unquote, urlparse

from bench.cache import hash_key, sha256_file

UNVERSIONED = "unversioned"  # a plug-in no installed distribution holds


@functools.cache  # read once per process: a file edited mid-run must not split a sweep
def source_hash(cls: type) -> str:
    """sha256 (16 hex digits) of the file that defines `cls`, or "unknown"."""
    try:
        return sha256_file(inspect.getsourcefile(cls))[:16]
    except (TypeError, OSError):
        return "unknown"


def package_version(cls: type) -> str:
    """`dist==version` of the installed distribution whose files hold the module that
    defines `cls` (of an editable install: whose source folder holds it), else UNVERSIONED:
    a module no distribution installed (one on PYTHONPATH), or one whose top-level name a
    distribution ships elsewhere (a plug-in's own `tests` package is not torch-fidelity's)."""
    path = module_path(cls)
    top = cls.__module__.partition(".")[0]
    for name in sorted(set(_distributions().get(top, []))):
        if path is not None and path in _owned(name):
            return f"{name}=={version(name)}"
    return UNVERSIONED


def module_path(cls: type) -> Path | None:
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    return Path(file).resolve() if file else None


@functools.cache  # read once per process
def _distributions() -> dict[str, list[str]]:
    return packages_distributions()


class _Owned:
    """The module files of one installed distribution: those its RECORD lists, and for an
    editable install (direct_url.json) every file under its source folder."""

    def __init__(self, files: frozenset[Path], root: Path | None):
        self.files, self.root = files, root

    def __contains__(self, path: Path) -> bool:
        return path in self.files or (self.root is not None and path.is_relative_to(self.root))


@functools.cache
def _owned(name: str) -> _Owned:
    try:
        dist = distribution(name)
    except PackageNotFoundError:
        return _Owned(frozenset(), None)
    files = frozenset(Path(dist.locate_file(f)).resolve() for f in dist.files or [])
    return _Owned(files, _editable_root(dist.read_text("direct_url.json")))


def _editable_root(direct_url: str | None) -> Path | None:
    try:
        info = json.loads(direct_url or "{}")
    except ValueError:
        return None
    url = info.get("url", "") if isinstance(info, dict) else ""
    editable = isinstance(info, dict) and info.get("dir_info", {}).get("editable", False)
    if not (editable and url.startswith("file://")):
        return None
    return Path(unquote(urlparse(url).path)).resolve()


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
