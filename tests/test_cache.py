"""The content-addressed cache: keys, round trips, compute-once."""

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
