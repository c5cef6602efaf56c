"""The content-addressed cache: keys, round trips, compute-once."""

import threading

import torch

from bench.cache import Cache, hash_key


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
