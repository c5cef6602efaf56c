"""The feature-extractor registry: uint8 NCHW images (or points) in, float32 (n, d) out.

An extractor is registered once with what the rest of genbench needs: its name in metric
columns, whether it needs the dataset's labels (a per-dataset classifier does), which kinds
of data it takes, and a loader `(dataset, device) -> Extractor`. Every feature-space metric
(FD, KID, PRDC, memorization, ...) runs in any registered space. Besides the built-ins,
extractors come from the entry-point group `genbench.extractors` or a `module:Class`
reference in a suite; such a class is built like a model plug-in (`data` and `device` are
passed when its __init__ accepts them) and needs a `features(images) -> (n, d)` method,
optionally `weights_sha256` and `name` (its column name).

The default rule, the same for `genbench run` and `genbench eval`: points -> their
coordinates (`pixels`); labelled images -> the dataset's classifier; other images ->
Inception.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.errors import UserError
from bench.plugins import find_object, load_plugins, plugin_entry_points
from bench.registry import LAZY, Registry, declarations, package_modules, target_of

if TYPE_CHECKING:
    import torch

    from bench.data import ImageDataset

ENTRY_POINT_GROUP = "genbench.extractors"


@dataclass
class Extractor:
    """A loaded extractor: its feature function and what to record about it."""

    features: Callable[[Any], np.ndarray]
    weights_sha256: str = ""
    provenance: dict[str, str | float] = field(default_factory=dict)
    protocol: str = ""  # what else determines the features (e.g. inference dtype): cache key


Loader = Callable[["ImageDataset", "torch.device", "Path | None"], Extractor]


@dataclass(frozen=True)
class ExtractorSpec:
    """What an extractor declares; its loader (and `dim`) load on first use."""

    name: str
    column: str  # how metric columns name this space
    needs_labels: bool = False
    kinds: tuple[str, ...] = ("images",)
    fd_name: str = "fd"  # FD in Inception features is FID
    takes_weights: bool = False  # a weights file the user provides (DINOv2, CLIP)
    # False: a network that only the metrics naming it in `also` use (LPIPS's VGG16), which
    # no feature-space metric runs in (fd_NAME is no metric, `features:` refuses it)
    feature_space: bool = True
    loader: Loader | None = None  # set for a module:Class extractor, else the registered one

    @property
    def load(self) -> Loader:
        """(dataset, device, weights file or None for the default place) -> Extractor."""
        return self.loader or EXTRACTORS.load(self.name).obj

    @property
    def dim(self) -> Callable[[ImageDataset], int] | None:
        """The feature dimension on a dataset, when known up front."""
        return None if self.loader else EXTRACTORS.load(self.name).extras.get("dim")

    @property
    def check_weights(self) -> Callable[[Path | None], None] | None:
        """preflight: (weights file or None for the default place) -> raises UserError
        unless the file holds this network's tensors; reads it, builds nothing."""
        return None if self.loader else EXTRACTORS.load(self.name).extras.get("check_weights")


def extractor_spec(
    name: str,
    *,
    column: str | None = None,
    needs_labels: bool = False,
    kinds: tuple[str, ...] = ("images",),
    fd_name: str = "fd",
    takes_weights: bool = False,
    feature_space: bool = True,
) -> ExtractorSpec:
    """The spec a registration's literal arguments declare."""
    if LAZY in (column, needs_labels, kinds, fd_name, takes_weights, feature_space):
        raise ValueError(
            f"extractor {name!r}: declare its arguments but dim and check_weights as literals"
        )
    return ExtractorSpec(
        name, column or name, needs_labels, tuple(kinds), fd_name, takes_weights, feature_space
    )


def _declared() -> Iterator[tuple[str, str, ExtractorSpec]]:
    own = package_modules(Path(__file__).parent, __name__)
    for d in declarations(own, ("register_extractor",)):
        kwargs = {k: v for k, v in d.kwargs.items() if k not in ("dim", "check_weights")}
        yield d.args[0], d.target, extractor_spec(*d.args, **kwargs)


EXTRACTORS: Registry[ExtractorSpec] = Registry("extractor", _declared)


def register_extractor(
    name: str,
    *,
    column: str | None = None,
    needs_labels: bool = False,
    kinds: tuple[str, ...] = ("images",),
    fd_name: str = "fd",
    takes_weights: bool = False,
    feature_space: bool = True,
    dim: Callable[[ImageDataset], int] | None = None,
    check_weights: Callable[[Path | None], None] | None = None,
) -> Callable[[Loader], Loader]:
    spec = extractor_spec(
        name,
        column=column,
        needs_labels=needs_labels,
        kinds=kinds,
        fd_name=fd_name,
        takes_weights=takes_weights,
        feature_space=feature_space,
    )

    def wrap(load: Loader) -> Loader:
        EXTRACTORS.add(name, target_of(load), spec, load, dim=dim, check_weights=check_weights)
        return load

    return wrap


def extractor_names() -> list[str]:
    load_plugins()
    return sorted(
        set(EXTRACTORS.names()) | {ep.name for ep in plugin_entry_points(ENTRY_POINT_GROUP)}
    )


def feature_space_names() -> list[str]:
    """The extractors that feature-space metrics run in (fd_NAME, `features:`)."""
    return [e for e in extractor_names() if e not in EXTRACTORS or EXTRACTORS.meta(e).feature_space]


def resolve_feature_space(ref: str) -> ExtractorSpec:
    """resolve_extractor for a feature space: a UserError for a network that is none."""
    spec = resolve_extractor(ref)
    if not spec.feature_space:
        raise UserError(
            f"{ref!r} is no feature space (only the metrics that name it use it): drop it "
            "from features / --features"
        )
    return spec


def default_extractor(data: ImageDataset) -> str:
    if data.kind == "points":
        return "pixels"
    return "classifier" if data.train.y is not None and data.num_classes else "inception"


def resolve_extractor(ref: str) -> ExtractorSpec:
    """The spec for a registered name, an entry-point name or `module:Class`."""
    load_plugins()
    if ref in EXTRACTORS:
        return EXTRACTORS.meta(ref)
    found = find_object("extractor", ref, ENTRY_POINT_GROUP)
    if found is not None:
        return _plugin_spec(ref, found)
    raise UserError(
        f"unknown extractor {ref!r}; choose one of: {', '.join(extractor_names())}, "
        "or give module:Class"
    )


def _plugin_spec(ref: str, cls: Any) -> ExtractorSpec:
    column = str(getattr(cls, "name", "") or getattr(cls, "__name__", ref)).lower()
    if not re.fullmatch(r"[a-z0-9_]+", column):
        raise UserError(f"extractor {ref!r}: its name {column!r} must be letters, digits and _")

    def load(data: ImageDataset, device: torch.device, weights: Path | None) -> Extractor:
        params = inspect.signature(cls).parameters
        offered = {"data": data, "device": device, "weights": weights}
        instance = cls(**{k: v for k, v in offered.items() if k in params})
        if not callable(getattr(instance, "features", None)):
            raise UserError(f"extractor {ref!r} has no features(images) method")
        sha = str(getattr(instance, "weights_sha256", ""))
        return Extractor(lambda x: np.asarray(instance.features(x), dtype=np.float32), sha)

    kinds = tuple(getattr(cls, "kinds", ("images",)))
    takes_weights = "weights" in inspect.signature(cls).parameters
    return ExtractorSpec(ref, column, kinds=kinds, takes_weights=takes_weights, loader=load)


def check_extractor(ref: str, data: ImageDataset, weights: Path | None = None) -> ExtractorSpec:
    """The spec, or one line saying why it cannot run on this dataset."""
    spec = resolve_extractor(ref)
    if weights is not None and not spec.takes_weights:
        raise UserError(f"extractor {ref!r} takes no weights file; drop --weights / weights:")
    if data.kind not in spec.kinds:
        raise UserError(f"extractor {ref!r} takes {'/'.join(spec.kinds)}, not {data.kind}")
    if spec.needs_labels and (data.train.y is None or not data.num_classes):
        raise UserError(
            f"extractor {ref!r} needs a labelled dataset and {data.name!r} has no labels; "
            "use inception or pixels features"
        )
    return spec
