"""Scores one sample set against its dataset: suite metric names -> metric values.

Which metrics run, in which feature spaces, is planned from the metric registry
(bench.metrics) and the extractor registry (bench.features) alone, the same way for
`genbench run` and `genbench eval`. Features are extracted once per (sample set, extractor)
and shared by every metric; reference features (train/test splits) and the dataset
classifier's logits of the test split are cached on disk by dataset hash, split, extractor
and weights, so a suite's jobs compute them once (a lock per entry: bench.cache).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bench.cache import Cache, default_cache_dir, hash_key
from bench.data import ImageDataset
from bench.errors import UserError
from bench.features import (
    Extractor,
    check_extractor,
    default_extractor,
    resolve_extractor,
    resolve_feature_space,
)
from bench.metrics import MetricSpec, fits_data, parse_metric


@dataclass(frozen=True)
class Planned:
    name: str  # as the suite or eval named it
    spec: MetricSpec
    extractors: tuple[str, ...]  # the feature spaces it runs in


def plan(
    names: Sequence[str],
    data: ImageDataset,
    features: Sequence[str] = (),
    n: int | None = None,
    weights: Mapping[str, Path] | None = None,
) -> list[Planned]:
    """What runs on this dataset with n samples. Metrics that do not apply to its kind of
    data (image metrics on points) are left out; ones that cannot run on it (labels on an
    unlabelled dataset, too few samples) are a UserError, so a suite stops before anything
    trains."""
    weights = weights or {}
    out = []
    for name in names:
        try:
            spec, named = parse_metric(name)
        except ValueError as e:
            raise UserError(str(e)) from None
        if not fits_data(name, spec.needs, data, n):
            continue
        extractors = spec.also
        if spec.per_extractor:
            if named is not None and not _applies(named, data):
                continue
            if named is not None:
                extractors = (named,)
            else:
                usable = [e for e in features if _applies(resolve_feature_space(e).name, data)]
                chosen = usable or [default_extractor(data)]
                extractors = tuple(dict.fromkeys([*chosen, *spec.also]))
        for e in extractors:
            try:
                ext = check_extractor(e, data, weights.get(e))
                if spec.check is not None and n is not None and ext.dim is not None:
                    spec.check(n, ext.dim(data))
            except UserError as err:
                raise UserError(f"metric {name!r}: {err}") from None
        out.append(Planned(name, spec, extractors))
    return out


def weights_network(extractor: str, names: Sequence[str]) -> str:
    """The network that eval's one --weights file is for: the --features extractor when it
    takes one, else the first that takes one among the networks the metrics name in `also`
    (CLIP for cmmd, LPIPS's VGG16 for lpips and ppl_lpips_vgg16)."""
    if resolve_extractor(extractor).takes_weights:
        return extractor
    for name in names:
        try:
            also = parse_metric(name)[0].also
        except ValueError:  # plan refuses it with the list of names
            continue
        for e in also:
            if resolve_extractor(e).takes_weights:
                return e
    return extractor


def small_n_warnings(planned: Sequence[Planned], data: ImageDataset, n: int) -> list[str]:
    """One line per planned metric and feature space whose value n samples are too few to
    trust, by the sample size the metric declares (`reliable`), with the reason."""
    lines = []
    for p in planned:
        rel = p.spec.reliable
        if rel is None:
            continue
        for e in p.extractors or (None,):
            dim_of = resolve_extractor(e).dim if e is not None and rel.per_dim else None
            dim = dim_of(data) if dim_of is not None else None
            name = f"{p.spec.name}_{e}" if p.spec.per_extractor else p.spec.name
            line = rel.warning(name, n, dim)
            if line is not None and line not in lines:
                lines.append(line)
    return lines


def needing_sample_labels(planned: Sequence[Planned]) -> list[str]:
    """The planned metrics that score samples against the classes they were asked for."""
    return [p.name for p in planned if "sample_labels" in p.spec.needs]


def _applies(extractor: str, data: ImageDataset) -> bool:
    return data.kind in resolve_extractor(extractor).kinds


@dataclass
class ScoringContext:
    data: ImageDataset
    fake: torch.Tensor
    device: torch.device
    # class-conditional samples: the label each sample was asked for (int64, len(fake));
    # None for unconditional models and samples files without labels
    fake_labels: torch.Tensor | None = None
    # translations from a samples file with source_indices: the source test row of each;
    # None: fake[i] translates source test image i
    source_indices: np.ndarray | None = None
    features_for: Sequence[str] = ()  # default feature spaces; empty: the dataset's default
    weights: Mapping[str, Path] = field(default_factory=dict)  # extractor -> weights file
    model: object | None = None  # for metrics that need it (bits/dim, throughput)
    batch_size: int = 256
    throughput_batch_sizes: Sequence[int] = (1, 16, 64, 256)
    provenance: dict[str, str | float] = field(default_factory=dict)
    artifacts: dict[str, object] = field(default_factory=dict)  # JSON-able, for the report
    # Optional hook around every feature pass: (extractor name, its function, images) ->
    # features. bench.distributed uses it to split a pass across torch.distributed ranks.
    extract: Callable[..., np.ndarray] | None = None
    _features: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    _loaded: dict[str, Extractor] = field(default_factory=dict)
    _logits: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.fake)

    @property
    def source_rows(self) -> np.ndarray:
        """Of a translation task: the row of the source's test split each translation was
        made from (on a paired task also its true target's row in the target's test split)."""
        return np.arange(self.n) if self.source_indices is None else self.source_indices

    def column(self, extractor: str) -> str:
        """The extractor's name in metric columns."""
        return resolve_extractor(extractor).column

    def fd_name(self, extractor: str) -> str:
        return resolve_extractor(extractor).fd_name

    def extractor(self, name: str) -> Extractor:
        if name not in self._loaded:
            path = self.weights.get(name)
            loaded = check_extractor(name, self.data, path).load(self.data, self.device, path)
            self._loaded[name] = loaded
            self.provenance.update(loaded.provenance)
        return self._loaded[name]

    def features(self, extractor: str, which: str) -> np.ndarray:
        """Features of 'fake', 'train' or 'test' images; reference splits cached on disk."""
        if (extractor, which) not in self._features:
            if which == "fake":
                self._features[extractor, which] = self._extract(extractor, self.fake)
            else:
                images = getattr(self.data, which).x
                weights = self.extractor(extractor).weights_sha256
                key = hash_key(self.data.content_hash, which, extractor, weights)
                protocol = self.extractor(extractor).protocol
                if protocol:  # absent for most extractors, so that their caches stay valid
                    key = hash_key(key, protocol)
                cache = Cache(default_cache_dir())
                self._features[extractor, which] = np.asarray(
                    cache.get_or_compute(
                        "features", key, lambda: torch.from_numpy(self._extract(extractor, images))
                    )
                )
        return self._features[extractor, which]

    def classifier_logits(self, which: str) -> np.ndarray:
        """The dataset classifier's logits of 'fake' or 'test' images, one pass per context:
        class coverage, the classifier score and conditional accuracy all read them. A real
        split's are cached on disk like its features, so a suite computes them once."""
        if which not in self._logits:
            from bench.features.classifier import INFERENCE_DTYPE, load_classifier

            clf = load_classifier(self.data, self.device)
            if which == "fake":
                self._logits[which] = clf.logits(self.fake)
            else:
                images = getattr(self.data, which).x
                protocol = f"inference {INFERENCE_DTYPE}"
                key = hash_key(
                    self.data.content_hash, which, "logits", clf.weights_sha256, protocol
                )
                logits = Cache(default_cache_dir()).get_or_compute(
                    "features", key, lambda: torch.from_numpy(clf.logits(images))
                )
                self._logits[which] = np.asarray(logits)
        return self._logits[which]

    def _extract(self, extractor: str, x: torch.Tensor) -> np.ndarray:
        fn = self.extractor(extractor).features
        return fn(x) if self.extract is None else self.extract(extractor, fn, x)


def score(ctx: ScoringContext, names: Sequence[str]) -> dict[str, float]:
    """{column: value}; the small-n warnings (small_n_warnings) go to
    ctx.artifacts["small_n_warnings"] for the leaderboard footer."""
    out: dict[str, float] = {}
    planned = plan(names, ctx.data, ctx.features_for, weights=ctx.weights)
    warnings = small_n_warnings(planned, ctx.data, ctx.n)
    if warnings:
        ctx.artifacts["small_n_warnings"] = warnings
    for p in planned:
        if "model" in p.spec.needs and ctx.model is None:
            continue
        if "sample_labels" in p.spec.needs and ctx.fake_labels is None:
            raise UserError(f"metric {p.name!r} needs the class each sample was asked for")
        if p.spec.per_extractor:
            for e in p.extractors:
                out.update(p.spec.compute(ctx, e))
        else:
            out.update(p.spec.compute(ctx))
    return out


def equal_size_subset(x: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A seeded subset of n rows (all rows when there are fewer): equal-n comparisons."""
    if len(x) <= n:
        return x
    idx = np.sort(np.random.default_rng(seed).choice(len(x), n, replace=False))
    return x[idx]
