"""The content-addressed cache: keys, round trips, compute-once."""

import contextlib
import os
import stat
import threading

import pytest
import torch

from bench.cache import Cache, atomic_write_bytes, hash_key


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_respect_the_umask(tmp_path, mask, expected):
    """#26 item 6: the temp file's 0600 stayed on the written file whatever the umask, so
    colleagues and web servers could not read leaderboards or statistics."""
    with umask(mask):
        atomic_write_bytes(tmp_path / "new.md", b"x")
        (tmp_path / "old.md").write_bytes(b"old")
        os.chmod(tmp_path / "old.md", 0o600)
        atomic_write_bytes(tmp_path / "old.md", b"y")  # replaced: a new file, the umask's mode
        assert os.umask(mask) == mask  # the umask itself is left as it was
    assert mode(tmp_path / "new.md") == expected and mode(tmp_path / "old.md") == expected
    assert (tmp_path / "old.md").read_bytes() == b"y"


def test_keys_are_stable_and_order_sensitive():
    assert hash_key("a", {"y": 1, "x": [1, 2]}) == hash_key("a", {"x": [1, 2], "y": 1})
    assert hash_key("a", "b") != hash_key("b", "a")
    assert hash_key("a", 1) != hash_key("a", "1.0") and len(hash_key()) == 24


def test_save_load_round_trip_and_missing_entry(tmp_path):
    cache = Cache(tmp_path)
    assert cache.load("samples", "nope") is None
    obj = {"x": torch.arange(6).reshape(2, 3), "info": {"steps": 3}}
    cache.save("samples", "k", obj)
    back = cache.load("samples", "k")
    assert torch.equal(back["x"], obj["x"]) and back["info"] == {"steps": 3}
    assert cache.load("checkpoints", "k") is None  # kinds are separate


def test_get_or_compute_computes_once(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return torch.ones(3)

    cache = Cache(tmp_path)
    first = cache.get_or_compute("features", "k", compute)
    second = Cache(tmp_path).get_or_compute("features", "k", compute)
    assert torch.equal(first, second) and len(calls) == 1


class WatchedCache(Cache):
    """A cache that tells when it was first asked for an entry or an entry's lock."""

    def __init__(self, root):
        super().__init__(root)
        self.touched = threading.Event()

    def load(self, kind, key):
        self.touched.set()
        return super().load(kind, key)

    def lock(self, kind, key):
        self.touched.set()
        return super().lock(kind, key)


def test_an_entry_being_computed_elsewhere_is_waited_for_then_loaded(tmp_path):
    """Another process holds the entry's lock while computing it: get_or_compute waits for
    it and loads its result instead of computing the entry a second time."""
    calls, got = [], []
    cache, elsewhere = WatchedCache(tmp_path), Cache(tmp_path)

    def compute():
        calls.append(1)
        return torch.ones(3)

    with elsewhere.lock("features", "k"):
        thread = threading.Thread(
            target=lambda: got.append(cache.get_or_compute("features", "k", compute))
        )
        thread.start()
        assert cache.touched.wait(60)
        elsewhere.save("features", "k", torch.arange(3))
    thread.join(60)
    assert calls == [] and torch.equal(got[0], torch.arange(3))
