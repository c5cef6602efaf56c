"""The model plug-in contract, the model registry, and how a suite's model name resolves.

A model is found, in order: the registry (`@register_model("name")` in any module that a
`genbench.plugins` entry point names; genbench's own baselines are registered that way, so
the harness never imports them), the entry-point group `genbench.models` of any installed
package, or a `package.module:Class` reference (which imports and runs that module's code).
A class with `reference = True` is a known-answer model and gets its own leaderboard table.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

import torch

from bench.data import ImageDataset
from bench.errors import UserError
from bench.plugins import find_object, load_plugins

ENTRY_POINT_GROUP = "genbench.models"


@dataclass(frozen=True)
class Budget:
    """Training budget, the same for every family in a suite."""

    steps: int
    seconds: float | None = None  # optional wall-clock cap on top of the steps


@dataclass
class Spent:
    """What a fit actually used; families fill it in, the runner records it."""

    steps: int = 0
    seconds: float = 0.0


Progress = Callable[[int, dict[str, float]], None]
"""Called by fit after each optimizer step with (step, {"loss": ...})."""


@runtime_checkable
class GenerativeModel(Protocol):
    def fit(
        self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress
    ) -> Spent: ...

    def sample(self, n: int, *, generator: torch.Generator, batch_size: int) -> torch.Tensor:
        """uint8 NCHW images of the dataset's shape (or float in [0, 1], which the harness
        quantizes); for point datasets float32 (n, D)."""
        ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, sd: dict) -> Any: ...


_REGISTRY: dict[str, type] = {}


def register_model(name: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = cls
        return cls

    return wrap


def registered_models() -> dict[str, type]:
    load_plugins()
    return dict(_REGISTRY)


def is_reference(cls: type) -> bool:
    return getattr(cls, "reference", False) is True


def _entry_point_models() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def model_names() -> list[str]:
    return sorted(set(registered_models()) | set(_entry_point_models()))


def resolve_model(ref: str) -> type:
    """Find the class for a registry name, an entry-point name or `module:Class`."""
    registry = registered_models()
    if ref in registry:
        return registry[ref]
    found = find_object("model", ref, ENTRY_POINT_GROUP)
    if found is not None:
        return found
    raise UserError(
        f"unknown model {ref!r}; choose one of: {', '.join(model_names())}, or give module:Class"
    )


def build_model(
    cls: type, data: ImageDataset, options: dict, device: torch.device | None = None
) -> GenerativeModel:
    """Instantiate a family; `shape`, `kind` and `device` are passed when its __init__
    accepts them (an explicit `device` option wins)."""
    params = inspect.signature(cls).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    offered = {"shape": data.shape, "kind": data.kind}
    if device is not None:
        offered["device"] = str(device)
    extra = {k: v for k, v in offered.items() if (k in params or accepts_any) and k not in options}
    try:
        model = cls(**extra, **options)
    except TypeError as e:
        raise UserError(f"model {cls.__name__}: bad options {options}: {e}") from None
    missing = [
        m for m in ("fit", "sample", "state_dict", "load_state_dict") if not hasattr(model, m)
    ]
    if missing:
        raise UserError(f"model {cls.__name__} lacks {', '.join(missing)} (see GenerativeModel)")
    return model
