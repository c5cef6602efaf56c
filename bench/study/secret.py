"""The study's secret: drawn once per study with `secrets`, kept in its database and never
sent to a browser. The pool, each rater's trial order and HYPE-time's staircase order come
from generators keyed by it, so a rater who knows genbench's code, the study's settings and
their own link still cannot recompute which trials show real images."""

from __future__ import annotations

import hmac
import secrets

import numpy as np


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def keyed_rng(secret: bytes, *parts: str) -> np.random.Generator:
    """A generator seeded by HMAC-SHA256(secret, parts): one independent stream per use."""
    digest = hmac.digest(secret, "\0".join(parts).encode(), "sha256")
    return np.random.default_rng(int.from_bytes(digest, "big"))
