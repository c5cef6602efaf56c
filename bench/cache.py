"""Content-addressed cache for checkpoints, samples, features and statistics.

Every entry is written atomically (temp file + rename) and has a sha256 sidecar written
after it; an entry whose sidecar is missing or does not match is treated as absent and
removed, so a crash mid-write never yields a half-written entry that reads as valid.
Processes sharing a cache (parallel jobs, two runs on one output folder) compute an entry
once: whoever computes it holds its lock (`Cache.lock`), and the others wait, then load it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from filelock import FileLock


def default_cache_dir() -> Path:
    """Machine-wide cache for things shared by all outputs (extractor weights, reference
    features): $GENBENCH_CACHE, else ~/.cache/genbench."""
    return Path(os.environ.get("GENBENCH_CACHE", Path.home() / ".cache" / "genbench"))


def hash_key(*parts: Any) -> str:
    """A stable key for JSON-serializable parts."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `path` through a temp file and a rename, with the mode a plain open() gives it:
    0666 less the umask (mkstemp's 0600 would hide leaderboards and statistics from others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    # Reading the umask means setting it; 0o077 for that instant, so a file another thread
    # creates meanwhile is private rather than open to all.
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


class Cache:
    """Entries live at ROOT/KIND/KEY.pt with a KEY.pt.sha256 sidecar."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _paths(self, kind: str, key: str) -> tuple[Path, Path]:
        path = self.root / kind / f"{key}.pt"
        return path, path.with_name(path.name + ".sha256")

    def load(self, kind: str, key: str) -> Any | None:
        """The stored object, or None when absent or corrupt (a corrupt entry is removed)."""
        path, sidecar = self._paths(kind, key)
        if not path.exists():
            return None
        data = path.read_bytes()
        expected = sidecar.read_text().strip() if sidecar.exists() else ""
        if hashlib.sha256(data).hexdigest() != expected:
            warnings.warn(f"cache entry {path} is corrupt; recomputing it", stacklevel=2)
            path.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
            return None
        import torch  # here, not at the top: the file helpers serve runs refused before torch

        return torch.load(io.BytesIO(data), weights_only=True)

    def save(self, kind: str, key: str, obj: Any) -> None:
        path, sidecar = self._paths(kind, key)
        import torch

        buf = io.BytesIO()
        torch.save(obj, buf)
        data = buf.getvalue()
        atomic_write_bytes(path, data)
        atomic_write_bytes(sidecar, hashlib.sha256(data).hexdigest().encode())

    def lock(self, kind: str, key: str) -> FileLock:
        """The entry's lock, held while it is computed (ROOT/KIND/KEY.lock)."""
        path = self.root / kind / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path))

    def get_or_compute(self, kind: str, key: str, compute) -> Any:
        """The entry, computed and saved when absent; computed once across processes."""
        obj = self.load(kind, key)
        if obj is not None:
            return obj
        with self.lock(kind, key):
            obj = self.load(kind, key)  # another process may have computed it meanwhile
            if obj is None:
                obj = compute()
                self.save(kind, key, obj)
        return obj
