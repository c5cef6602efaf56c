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
from bench.errors import UserError

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


# Generic names for `genbench eval --features X`: (metric, extractor) -> scorer group.
GENERIC = {
    ("fd", "classifier"): "fd_classifier",
    ("fd", "pixels"): "fd_pixels",
    ("fd", "inception"): "fid_inception",
    ("kid", "classifier"): "kid_classifier",
    ("kid", "pixels"): "kid_pixels",
    ("kid", "inception"): "kid_inception",
}
EVAL_METRICS = ("fd", "kid", "prdc", "memorization", "class_coverage", "classifier_score", "modes")


def groups_for(metrics: list[str], extractor: str) -> list[str]:
    """Map eval's generic metric names onto scorer groups for one feature space."""
    out = []
    for m in metrics:
        if (m, extractor) in GENERIC:
            out.append(GENERIC[m, extractor])
        elif m in _SCORERS:
            out.append(m)
        else:
            raise UserError(f"unknown metric {m!r}; choose from {', '.join(EVAL_METRICS)}")
    return out


@dataclass
class ScoringContext:
    data: ImageDataset
    fake: torch.Tensor
    device: torch.device
    extractor: str | None = None  # overrides the default feature space of prdc/memorization
    provenance: dict[str, str | float] = field(default_factory=dict)
    artifacts: dict[str, object] = field(default_factory=dict)  # JSON-able, for the report
    _features: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    # Optional hook around every feature pass: (extractor name, its function, images) ->
    # features. bench.distributed uses it to split a pass across torch.distributed ranks.
    extract: Callable[..., np.ndarray] | None = None

    @property
    def n(self) -> int:
        return len(self.fake)

    @property
    def point_data(self) -> bool:
        return self.data.kind == "points"

    def default_extractor(self) -> str:
        if self.extractor:
            return self.extractor
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
        fn = self._extractor(extractor)
        return fn(x) if self.extract is None else self.extract(extractor, fn, x)


def pixel_features(x: torch.Tensor) -> np.ndarray:
    """Flattened pixels in [0, 1]; points pass through as their coordinates."""
    if x.dtype == torch.uint8:
        from bench.features.pixels import pixel_features as flatten

        return flatten(x)
    return x.reshape(len(x), -1).float().numpy()


def score(ctx: ScoringContext, metrics: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in metrics:
        if name in _SCORERS:
            out.update(_SCORERS[name](ctx))
    return out


def equal_size_subset(x: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A seeded subset of n rows (all rows when there are fewer): equal-n comparisons."""
    if len(x) <= n:
        return x
    idx = np.sort(np.random.default_rng(seed).choice(len(x), n, replace=False))
    return x[idx]


def _images_only(fn: Scorer) -> Scorer:
    def wrapped(ctx: ScoringContext) -> dict[str, float]:
        return {} if ctx.point_data else fn(ctx)

    wrapped.__name__ = fn.__name__
    return wrapped


def _fd(ctx: ScoringContext, extractor: str, prefix: str = "fd") -> dict[str, float]:
    from bench.metrics.fd import frechet_distance

    fake, train = ctx.features(extractor, "fake"), ctx.features(extractor, "train")
    return {f"{prefix}_{extractor}_n{ctx.n}_train": frechet_distance(fake, train)}


@scorer("fd_classifier")
@_images_only
def fd_classifier(ctx: ScoringContext) -> dict[str, float]:
    return _fd(ctx, "classifier")


@scorer("fd_pixels")
def fd_pixels(ctx: ScoringContext) -> dict[str, float]:
    return _fd(ctx, "pixels")


@scorer("fid_inception")
@_images_only
def fid_inception(ctx: ScoringContext) -> dict[str, float]:
    from bench.metrics.fd import frechet_distance

    fake, train = ctx.features("inception", "fake"), ctx.features("inception", "train")
    return {f"fid_inception_clean_n{ctx.n}_train": frechet_distance(fake, train)}


@scorer("fdinf_classifier")
@_images_only
def fdinf_classifier(ctx: ScoringContext) -> dict[str, float]:
    from bench.metrics.fd import fd_infinity, feature_stats

    mu, sigma = feature_stats(ctx.features("classifier", "train"))
    value = fd_infinity(ctx.features("classifier", "fake"), mu, sigma)
    return {"fdinf_classifier_train": value}


def _kid(ctx: ScoringContext, extractor: str) -> dict[str, float]:
    from bench.metrics.kid import kid

    mean, std = kid(ctx.features(extractor, "fake"), ctx.features(extractor, "train"))
    return {f"kid_{extractor}_n{ctx.n}": mean, f"kid_{extractor}_n{ctx.n}_std": std}


@scorer("kid_classifier")
@_images_only
def kid_classifier(ctx: ScoringContext) -> dict[str, float]:
    return _kid(ctx, "classifier")


@scorer("kid_inception")
@_images_only
def kid_inception(ctx: ScoringContext) -> dict[str, float]:
    return _kid(ctx, "inception")


@scorer("kid_pixels")
def kid_pixels(ctx: ScoringContext) -> dict[str, float]:
    return _kid(ctx, "pixels")


@scorer("prdc")
def prdc(ctx: ScoringContext) -> dict[str, float]:
    """Precision/recall (k=3), density/coverage (k=5) against an equally sized training
    subset, in classifier features (coordinates for point datasets)."""
    from bench.metrics.prdc import prdc_metrics

    ext = ctx.default_extractor()
    fake = ctx.features(ext, "fake")
    real = equal_size_subset(ctx.features(ext, "train"), len(fake))
    m = prdc_metrics(real, fake, k_pr=3, k_dc=5)
    return {
        f"precision_{ext}_k3": m["precision"],
        f"recall_{ext}_k3": m["recall"],
        f"density_{ext}_k5": m["density"],
        f"coverage_{ext}_k5": m["coverage"],
    }


@scorer("memorization")
def memorization(ctx: ScoringContext) -> dict[str, float]:
    """Copy fraction, AuthPct, C_T and the NN distance gap, in the dataset's feature space
    and in pixels."""
    from bench.metrics.memorization import memorization as measure

    out = {}
    for ext in dict.fromkeys([ctx.default_extractor(), "pixels"]):
        m = measure(
            ctx.features(ext, "train"), ctx.features(ext, "test"), ctx.features(ext, "fake")
        )
        out.update(
            {
                f"copy_fraction_1/3_{ext}": m["copy_fraction"],
                f"authpct_{ext}": m["authpct"],
                f"ct_{ext}": m["c_t"],
                f"nn_gap_ratio_{ext}": m["nn_ratio"],
            }
        )
    return out


@scorer("class_coverage")
@_images_only
def class_coverage(ctx: ScoringContext) -> dict[str, float]:
    """Classes hit, KL and TV of the classifier's labels of the samples against the training
    labels, with the same for an equally sized real test subset (the noise floor)."""
    from bench.features.classifier import load_classifier
    from bench.metrics.modes import class_coverage as coverage

    if ctx.data.train.y is None:
        return {}
    clf = load_classifier(ctx.data, ctx.device)
    test = equal_size_subset(ctx.data.test.x.numpy(), ctx.n)
    fake_labels, test_labels = clf.predict(ctx.fake), clf.predict(torch.from_numpy(test))
    m = coverage(fake_labels, ctx.data.train.y, ctx.data.num_classes, test_pred_labels=test_labels)
    k = ctx.data.num_classes
    ctx.artifacts["class_histogram"] = {
        "samples": np.bincount(fake_labels, minlength=k).tolist(),
        "train": np.bincount(ctx.data.train.y.numpy(), minlength=k).tolist(),
    }
    return {
        "classes_hit": m["classes_hit"],
        "class_kl": m["kl"],
        "class_tv": m["tv"],
        "class_kl_test_floor": m["test_kl"],
        "class_tv_test_floor": m["test_tv"],
    }


@scorer("classifier_score")
@_images_only
def classifier_score(ctx: ScoringContext) -> dict[str, float]:
    """exp E[KL(p(y|x) || p(y))] with the dataset's classifier (Inception Score's formula)."""
    from bench.features.classifier import load_classifier
    from bench.metrics.inception_score import inception_score

    clf = load_classifier(ctx.data, ctx.device)
    mean, std = inception_score(clf.logits(ctx.fake))
    return {"classifier_score": mean, "classifier_score_std": std}


@scorer("inception_score")
@_images_only
def inception_score_(ctx: ScoringContext) -> dict[str, float]:
    """Inception Score (10 splits) from the 1008-way Inception classifier, which only the
    torch hub weights file carries (bench.features.inception.inception_logits says so)."""
    from bench.features.inception import inception_logits
    from bench.metrics.inception_score import inception_score

    mean, std = inception_score(inception_logits(ctx.fake, mode="clean", device=ctx.device))
    return {f"inception_score_n{ctx.n}": mean, f"inception_score_n{ctx.n}_std": std}


@scorer("modes")
def modes(ctx: ScoringContext) -> dict[str, float]:
    """2-D mixtures: modes captured, high-quality share, reverse KL; stacked digits: modes
    of k**3 and KL to uniform (VEEGAN/PacGAN)."""
    from bench.metrics.modes import gmm_modes, stacked_modes

    if "stacked_base" in ctx.data.meta:
        from bench.features.classifier import load_classifier

        clf = load_classifier(ctx.data, ctx.device)
        k = clf.base_classes
        m = stacked_modes(clf.channel_labels(ctx.fake), k)
        return {f"stacked_modes_of{k**3}": m["modes"], "stacked_kl_uniform": m["kl"]}
    if "centers" not in ctx.data.meta:
        return {}
    m = gmm_modes(ctx.fake, np.asarray(ctx.data.meta["centers"]), ctx.data.meta["sigma"])
    return {
        "modes_captured": m["modes"],
        "modes_hq": m["hq_share"],
        "modes_reverse_kl": m["reverse_kl"],
    }
