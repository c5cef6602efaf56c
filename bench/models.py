"""The model plug-in contract, the model registry, and how a suite's model name resolves.

A model is found, in order: the registry (`@register_model("name")` in any module that a
`genbench.plugins` entry point names; genbench's own baselines declare themselves that way
and are read from their source, bench.registry, until a job uses one), the entry-point
group `genbench.models` of any installed package, a `prefix:ARG` family registered with
`@register_model_prefix("prefix")` (an exported generator `torchscript:G.pt`, a pipeline
folder `diffusers:PATH`: the class's `bind(ARG)` returns the class for that file, reading
it and refusing it with a UserError), or a `package.module:Class` reference (which imports
and runs that module's code). A prefix wins over a module of the same name.
A class with `pretrained = True` comes trained (its file holds the model): genbench never
fits it, as for a checkpoint; its `source_path` is hashed into the job keys and recorded, its
`provenance` dict recorded as `model.KEY` params; a prefix class's optional `check(ARG)` runs
when the suite is read, before torch loads.
A class with `reference = True` is a known-answer model and gets its own leaderboard table.

A model is class-conditional when its instance has an int attribute `num_classes` > 0: `fit`
learns from `data.train.y` and `sample` receives `labels`, the class asked for each sample
(drawn by the harness, bench.job.asked_labels). `build_model` passes the dataset's
`num_classes` to an __init__ that accepts it.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bench.data import ImageDataset
from bench.errors import UserError
from bench.plugins import (
    PLUGIN_GROUP,
    find_object,
    load_plugins,
    own_entry_points,
    plugin_entry_points,
)
from bench.registry import (
    ClassInfo,
    Registry,
    declarations,
    package_modules,
    summary,
    target_of,
)
from bench.translation import TRANSLATION_METHODS, is_translation
from bench.translation.checks import check_model_for

if TYPE_CHECKING:
    import torch

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
    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        """Train for budget.steps steps; with budget.steps == 0, only set the model up,
        ready to sample untrained (genbench throughput and scripts/gpu-check rely on it)."""
        ...

    def sample(self, n: int, *, generator: torch.Generator, batch_size: int) -> torch.Tensor:
        """uint8 NCHW images of the dataset's shape (or float in [0, 1], which the harness
        quantizes); for point datasets float32 (n, D).

        A class-conditional model (`num_classes` set) is called as
        sample(n, labels=labels, generator=..., batch_size=...): `labels` is an int64 CPU
        tensor of n classes in [0, num_classes), sample i drawn from class labels[i]. Sampling
        options (a guidance scale) are constructor options listed in `SAMPLE_OPTIONS`."""
        ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, sd: dict) -> Any: ...


@dataclass(frozen=True)
class InitSignature:
    """What model_arguments needs of a model class's __init__; genbench's baselines declare
    it in their source, so their options are checked before torch loads."""

    name: str  # the class's, for messages
    params: dict[str, bool]  # keyword parameter -> whether it has a default
    var_keyword: bool  # takes **kwargs


@dataclass(frozen=True)
class ModelSpec:
    """What a registered model class declares; the class loads on first use."""

    name: str
    signature: InitSignature | None  # None: its source does not tell (a base from elsewhere)
    sample_options: tuple[str, ...] = ()
    reference: bool = False
    summary: str = ""  # the class docstring's first clause

    @property
    def conditional(self) -> bool:
        return self.signature is not None and "num_classes" in self.signature.params


def model_spec(name: str, cls_name: str, info: ClassInfo | None, doc: str | None) -> ModelSpec:
    sig = (
        None
        if info is None or info.params is None
        else InitSignature(cls_name, info.params, info.var_keyword)
    )
    attrs = info.attrs if info else {}
    options = tuple(attrs.get("SAMPLE_OPTIONS", ()))
    return ModelSpec(name, sig, options, attrs.get("reference", False) is True, headline(doc))


def headline(doc: str | None) -> str:
    """A docstring's first clause (up to '. ', '; ' or ': ' outside parentheses)."""
    text, depth = summary(doc), 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and ch in ".;:" and text[i + 1 : i + 2] in (" ", ""):
            return text[: i + 1] if ch == "." else text[:i]
    return text


def _declared(function: str) -> Callable[[], Iterator[tuple[str, str, ModelSpec]]]:
    def declared() -> Iterator[tuple[str, str, ModelSpec]]:
        for d in declarations(_plugin_packages_of_genbench(), (function,)):
            cls_name = d.target.partition(":")[2]
            yield d.args[0], d.target, model_spec(d.args[0], cls_name, d.cls, d.doc)

    return declared


def _plugin_packages_of_genbench() -> Iterator[tuple[str, Path]]:
    """The modules of genbench's own `genbench.plugins` entry points (its baselines), found
    without importing them."""
    for ep in own_entry_points(PLUGIN_GROUP):
        found = importlib.util.find_spec(ep.value)
        if found is None or found.origin is None:
            continue
        if found.submodule_search_locations:
            yield from package_modules(Path(found.origin).parent, ep.value)
        else:
            yield ep.value, Path(found.origin)


MODELS: Registry[ModelSpec] = Registry("model", _declared("register_model"))
PREFIXES: Registry[ModelSpec] = Registry("model prefix", _declared("register_model_prefix"))


def register_model(name: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        MODELS.add(name, target_of(cls), class_spec(name, cls), cls)
        return cls

    return wrap


def register_model_prefix(prefix: str) -> Callable[[type], type]:
    """Register a `prefix:ARG` family on a class whose classmethod `bind(ARG)` returns the
    model class for that ARG."""

    def wrap(cls: type) -> type:
        PREFIXES.add(prefix, target_of(cls), class_spec(prefix, cls), cls)
        return cls

    return wrap


def model_prefix(ref: str) -> tuple[str, str] | None:
    """(prefix, ARG) of a `prefix:ARG` reference to a registered family, else None."""
    prefix, colon, arg = ref.partition(":")
    return (prefix, arg) if colon and prefix in PREFIXES else None


def check_model_files(ref: str) -> None:
    """What a `prefix:ARG` family checks of its file before torch loads (its classmethod
    `check(ARG)`, where it has one: a pickle refused unopened, a folder's allowlists)."""
    prefixed = model_prefix(ref)
    if prefixed is not None:
        check = getattr(PREFIXES.load(prefixed[0]).obj, "check", None)
        if check is not None:
            check(prefixed[1])


@functools.cache  # one class per file and process: its keys and checks read it once
def _bound(prefix: str, arg: str) -> type:
    return PREFIXES.load(prefix).obj.bind(arg)


def is_pretrained(cls: type) -> bool:
    return getattr(cls, "pretrained", False) is True


def model_file(cls: type) -> Path | None:
    """The file or folder a pretrained class's model comes from (hashed into its keys)."""
    path = getattr(cls, "source_path", None)
    return Path(path) if path is not None else None


def class_spec(name: str, cls: type) -> ModelSpec:
    """What a loaded class says, as its source would declare it."""
    sig = init_signature(cls)
    attrs = {k: getattr(cls, k) for k in ("SAMPLE_OPTIONS", "reference") if hasattr(cls, k)}
    info = ClassInfo(sig.params, sig.var_keyword, attrs)
    return model_spec(name, cls.__name__, info, cls.__doc__)


def is_reference(cls: type) -> bool:
    return getattr(cls, "reference", False) is True


def is_conditional(model_or_cls: object) -> bool:
    """A class-conditional model: its `num_classes` is a positive int. For a class, before it
    is built: a positive int class attribute, or an __init__ that takes `num_classes`."""
    k = getattr(model_or_cls, "num_classes", None)
    if isinstance(k, int) and not isinstance(k, bool):
        return k > 0
    if isinstance(model_or_cls, type):
        return "num_classes" in inspect.signature(model_or_cls).parameters
    return False


def _entry_point_models() -> dict[str, Any]:
    return {ep.name: ep for ep in plugin_entry_points(ENTRY_POINT_GROUP)}


def model_names() -> list[str]:
    load_plugins()
    prefixed = {f"{p}:PATH" for p in PREFIXES.names()}
    return sorted(set(MODELS.names()) | set(_entry_point_models()) | prefixed)


def describe_models() -> list[tuple[str, str]]:
    """(name, what it is) for `genbench list models`: a registered model's summary, marked
    [class-conditional] and [reference]; entry points are named only (not imported)."""
    rows = []
    for name in model_names():
        prefix = name.removesuffix(":PATH")
        if prefix in PREFIXES:  # whether it is conditional depends on its file
            rows.append((name, PREFIXES.meta(prefix).summary))
            continue
        spec = MODELS.meta(name) if name in MODELS else ModelSpec(name, None)
        marks = [
            ("[class-conditional] " if spec.conditional else ""),
            ("[reference] " if spec.reference else ""),
        ]
        rows.append((name, "".join(marks) + spec.summary))
    return rows


def check_model(ref: str) -> None:
    """A UserError unless `ref` names a model; a registered one is not imported (an entry
    point or module:Class is resolved)."""
    load_plugins()
    if ref not in MODELS and model_prefix(ref) is None:
        resolve_model(ref)


def model_signature(ref: str) -> InitSignature | None:
    """The __init__ of a registered model, as declared (its module is not imported); None
    for entry points and module:Class references."""
    load_plugins()
    return MODELS.meta(ref).signature if ref in MODELS else None


def resolve_model(ref: str) -> type:
    """Find the class for a registry name, a `prefix:ARG`, an entry-point name or
    `module:Class`."""
    load_plugins()
    if ref in MODELS:
        return MODELS.load(ref).obj
    prefixed = model_prefix(ref)
    if prefixed is not None:
        return _bound(*prefixed)
    found = find_object("model", ref, ENTRY_POINT_GROUP)
    if found is not None:
        return found
    raise UserError(
        f"unknown model {ref!r}; choose one of: {', '.join(model_names())}, or give module:Class"
    )


def build_model(
    cls: type, data: ImageDataset, options: dict, device: torch.device | None = None
) -> GenerativeModel:
    """Instantiate a family with model_arguments; a class-conditional model must have the
    dataset's number of classes."""
    check_model_for(cls, cls.__name__, data)
    arguments = model_arguments(init_signature(cls), data, options, device)
    try:
        model = cls(**arguments)
    except TypeError as e:
        raise UserError(f"model {cls.__name__}: bad options {options}: {e}") from None
    methods, contract = (
        (TRANSLATION_METHODS, "bench.translation")
        if is_translation(data)
        else (("fit", "sample", "state_dict", "load_state_dict"), "GenerativeModel")
    )
    missing = [m for m in methods if not hasattr(model, m)]
    if missing:
        raise UserError(f"model {cls.__name__} lacks {', '.join(missing)} (see {contract})")
    if is_conditional(model):
        if not data.num_classes:
            raise UserError(unlabelled_dataset(cls.__name__, data.name))
        if model.num_classes != data.num_classes:
            raise UserError(other_classes(cls.__name__, model.num_classes, data))
    return model


def init_signature(cls: type) -> InitSignature:
    params = inspect.signature(cls).parameters.values()
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return InitSignature(
        cls.__name__,
        {p.name: p.default is not p.empty for p in params if p.kind in keyword},
        any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params),
    )


def model_arguments(
    sig: InitSignature, data: ImageDataset, options: dict, device: torch.device | str | None = None
) -> dict:
    """The keyword arguments for a model class: the options, and `shape`, `kind`,
    `num_classes` (labelled datasets) and `device` where its __init__ takes them (an explicit
    option wins). Refused before anything is built: an option it does not take, a num_classes
    it needs from a dataset without labels or that is not the dataset's."""
    name, params = sig.name, sig.params
    unknown = [k for k in options if k not in params and not sig.var_keyword]
    if unknown:
        raise UserError(
            f"model {name}: bad options {options}: {name}.__init__() got an unexpected "
            f"keyword argument {unknown[0]!r}"
        )
    offered = {"shape": data.shape, "kind": data.kind}
    if device is not None:
        offered["device"] = str(device)
    extra = {
        k: v for k, v in offered.items() if (k in params or sig.var_keyword) and k not in options
    }
    # only to an __init__ that names it: **kwargs does not make a model conditional
    if "num_classes" in params:
        if "num_classes" in options:
            if data.num_classes and options["num_classes"] != data.num_classes:
                raise UserError(other_classes(name, options["num_classes"], data))
        elif data.num_classes:
            extra["num_classes"] = data.num_classes
        elif not params["num_classes"]:
            raise UserError(unlabelled_dataset(name, data.name))
    return {**extra, **options}


def other_classes(model: str, num_classes: object, data: ImageDataset) -> str:
    return (
        f"model {model} has num_classes={num_classes} and dataset {data.name!r} has "
        f"{data.num_classes} classes: the labels asked for would not match; drop the "
        "num_classes option (the dataset's is passed)"
    )


def unlabelled_dataset(model: str, dataset: str) -> str:
    return (
        f"model {model} is class-conditional (num_classes) and dataset {dataset!r} has no "
        "class labels; use a labelled dataset (digits, mnist, cifar10, ...)"
    )
