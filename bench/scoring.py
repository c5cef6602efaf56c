"""Scores one sample set against its dataset: the suite's metric names -> metric values.

Features are extracted once per (sample set, extractor) and shared by every metric;
reference features (train/test splits) are cached on disk by dataset hash, split,
extractor weights and n. Metrics that need the model itself (bits per dimension,
throughput) are computed by the runner, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from bench.cache import Cache, default_cache_dir, hash_key
from bench.data import ImageDataset

Scorer = Callable[["ScoringContext"], dict[str, float]]
_SCORERS: dict[str, Scorer] = {}
MODEL_METRICS = ("bits_per_dim", "throughput")  # computed by the runner from the model


def scorer(name: str) -> Callable[[Scorer], Scorer]:
    def wrap(fn: Scorer) -> Scorer:
        _SCORERS[name] = fn
        return fn

    return wrap


def metric_names() -> list[str]:
    return sorted([*_SCORERS, *MODEL_METRICS])


@dataclass
class ScoringContext:
    data: ImageDataset
    fake: torch.Tensor
    device: torch.device
    provenance: dict[str, str | float] = field(default_factory=dict)
    _features: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.fake)

    @property
    def point_data(self) -> bool:
        return self.data.kind == "points"

    def default_extractor(self) -> str:
        return "pixels" if self.point_data else "classifier"

    def features(self, extractor: str, which: str) -> np.ndarray:
        """Features of 'fake', 'train' or 'test' images; reference splits cached on disk."""
        if (extractor, which) not in self._features:
            if which == "fake":
                self._features[extractor, which] = self._extract(extractor, self.fake)
            else:
                images = getattr(self.data, which).x
                key = hash_key(self.data.content_hash, which, extractor, self._weights(extractor))
                cache = Cache(default_cache_dir())
                self._features[extractor, which] = np.asarray(
                    cache.get_or_compute(
                        "features", key, lambda: torch.from_numpy(self._extract(extractor, images))
                    )
                )
        return self._features[extractor, which]

    def _weights(self, extractor: str) -> str:
        self._extractor(extractor)
        return str(self.provenance.get(f"{extractor}_weights_sha256", ""))

    def _extractor(self, extractor: str) -> Callable[[torch.Tensor], np.ndarray]:
        if extractor == "classifier":
            from bench.features.classifier import load_classifier

            clf = load_classifier(self.data, self.device)
            self.provenance["classifier_weights_sha256"] = clf.weights_sha256
            self.provenance["classifier_test_accuracy"] = clf.test_accuracy
            return clf.features
        if extractor == "pixels":
            return pixel_features
        if extractor == "inception":
            from bench.features.inception import inception_features, load_inception

            _, sha, _ = load_inception(self.device)
            self.provenance["inception_weights_sha256"] = sha
            return lambda x: inception_features(x, mode="clean", device=self.device)
        raise KeyError(extractor)

    def _extract(self, extractor: str, x: torch.Tensor) -> np.ndarray:
        return self._extractor(extractor)(x)


def pixel_features(x: torch.Tensor) -> np.ndarray:
    """Flattened pixels in [0, 1] (points pass through as their coordinates)."""
    if x.dtype == torch.uint8:
        return (x.reshape(len(x), -1).float() / 255.0).numpy()
    return x.reshape(len(x), -1).float().numpy()


def score(ctx: ScoringContext, metrics: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in metrics:
        if name in _SCORERS:
            out.update(_SCORERS[name](ctx))
    return out


def _fd(ctx: ScoringContext, extractor: str) -> dict[str, float]:
    from bench.metrics.fd import frechet_distance

    fake, train = ctx.features(extractor, "fake"), ctx.features(extractor, "train")
    return {f"fd_{extractor}_n{ctx.n}_train": frechet_distance(fake, train)}


@scorer("fd_classifier")
def fd_classifier(ctx: ScoringContext) -> dict[str, float]:
    if ctx.point_data:
        return {}
    return _fd(ctx, "classifier")


@scorer("fd_pixels")
def fd_pixels(ctx: ScoringContext) -> dict[str, float]:
    return _fd(ctx, "pixels")
