"""The registries' names without importing the modules that register them (nor torch).

`genbench list`, the checks of a suite by name (models, datasets, metrics, extractors,
`rank_by` columns) and those made before torch loads (bench.precheck: a baseline's options,
what a metric needs) read DECLARED (bench/declared.py): what genbench's own modules register,
copied from the registries by `python -m bench.names` and compared with them by
tests/test_names.py, so the registries stay the one source. Those modules, and torch, load
when a job runs. What is registered at run time (a suite's `plugins:`) is read from the
registries themselves, and a plug-in module DECLARED does not cover (GENBENCH_PLUGINS,
another package's `genbench.plugins` entry point) is imported as before.
"""

from __future__ import annotations

import pprint
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.declared import DECLARED
from bench.errors import UserError
from bench.features import ENTRY_POINT_GROUP as EXTRACTOR_GROUP
from bench.models import ENTRY_POINT_GROUP as MODEL_GROUP
from bench.models import InitSignature
from bench.plugins import (
    BUILTIN_MODULES,
    PLUGIN_GROUP,
    import_plugin,
    load_plugins,
    plugin_entry_points,
)

KINDS = ("models", "datasets", "metrics", "extractors")


def registered() -> dict:
    """What the registries hold now, read from the modules already imported (a registry
    that no module has imported holds nothing)."""
    models = sys.modules.get("bench.models")
    data = sys.modules.get("bench.data")
    features = sys.modules.get("bench.features")
    metrics = sys.modules.get("bench.metrics")
    specs = metrics._SPECS if metrics else {}
    return {
        "models": sorted(models._REGISTRY) if models else [],
        "model_signatures": {
            name: models.init_signature(cls).__dict__
            for name, cls in sorted(models._REGISTRY.items())
        }
        if models
        else {},
        "datasets": sorted(data._LOADERS) if data else [],
        "dataset_prefixes": sorted(data._PREFIX_LOADERS) if data else [],
        "extractors": {n: s.takes_weights for n, s in sorted(features._REGISTRY.items())}
        if features
        else {},
        "metrics": {
            name: {
                "columns": [(c.prefix, c.direction, c.order, c.shown) for c in spec.columns],
                "per_extractor": spec.per_extractor,
                "also": list(spec.also),
                "needs": sorted(spec.needs),
                "summary": spec.summary,
                "in_suites": name not in metrics._ELSEWHERE,
            }
            for name, spec in sorted(specs.items())
        },
        "aliases": {a: tuple(v) for a, v in sorted(metrics._ALIASES.items())} if metrics else {},
    }


def snapshot() -> dict:
    """What genbench's own modules register: the value DECLARED must hold."""
    from bench.data import dataset_names

    own = [ep for ep in plugin_entry_points(PLUGIN_GROUP) if ep.dist and ep.dist.name == "genbench"]
    for module in BUILTIN_MODULES:
        import_plugin(module)
    for ep in own:
        ep.load()
    dataset_names()  # imports the dataset loaders
    return {"modules": [*BUILTIN_MODULES, *(ep.value for ep in own)], **registered()}


def current() -> dict:
    """DECLARED with what the registries hold now, after importing the plug-in modules that
    DECLARED does not cover; plus the names of the model and extractor entry points."""
    load_plugins(declared=DECLARED["modules"])
    now = registered()
    return {
        "models": sorted({*DECLARED["models"], *now["models"]}),
        "model_signatures": {**DECLARED["model_signatures"], **now["model_signatures"]},
        "datasets": sorted({*DECLARED["datasets"], *now["datasets"]}),
        "dataset_prefixes": sorted({*DECLARED["dataset_prefixes"], *now["dataset_prefixes"]}),
        "extractors": {**DECLARED["extractors"], **now["extractors"]},
        "metrics": {**DECLARED["metrics"], **now["metrics"]},
        "aliases": {**DECLARED["aliases"], **now["aliases"]},
        "model_entry_points": {ep.name for ep in plugin_entry_points(MODEL_GROUP)},
        "extractor_entry_points": {ep.name for ep in plugin_entry_points(EXTRACTOR_GROUP)},
    }


def known_names() -> dict[str, list[str]]:
    """What `genbench list` prints for each kind."""
    view = current()
    return {
        "models": model_names(view),
        "datasets": dataset_names(view),
        "metrics": metric_names(view),
        "extractors": extractor_names(view),
    }


# -- as bench.models, bench.data, bench.features and bench.metrics answer them; a test
#    checks each against those functions ---------------------------------------------------


def model_names(view: dict) -> list[str]:
    return sorted(set(view["models"]) | view["model_entry_points"])


def check_model(ref: str) -> None:
    """A UserError unless `ref` names a model (an entry point or module:Class is resolved)."""
    view = current()
    if ref in view["models"]:
        return
    if ref in view["model_entry_points"] or ":" in ref:
        from bench.models import resolve_model

        resolve_model(ref)
        return
    raise UserError(
        f"unknown model {ref!r}; choose one of: {', '.join(model_names(view))}, "
        "or give module:Class"
    )


def dataset_names(view: dict) -> list[str]:
    return view["datasets"] + [f"{p}:..." for p in view["dataset_prefixes"]]


def is_known_dataset(name: str) -> bool:
    view = current()
    prefix = name.split(":", 1)[0]
    return name in view["datasets"] or ":" in name and prefix in view["dataset_prefixes"]


def check_dataset(name: str) -> None:
    if not is_known_dataset(name):
        names = ", ".join(dataset_names(current()))
        raise ValueError(f"unknown dataset {name!r}; choose one of: {names}")


def extractor_names(view: dict) -> list[str]:
    return sorted(set(view["extractors"]) | view["extractor_entry_points"])


def takes_weights(ref: str) -> bool:
    """Whether extractor `ref` takes a weights file; a UserError when it names none (an
    entry point or module:Class is resolved)."""
    view = current()
    if ref in view["extractors"]:
        return view["extractors"][ref]
    if ref in view["extractor_entry_points"] or ":" in ref:
        from bench.features import resolve_extractor

        return resolve_extractor(ref).takes_weights
    raise UserError(
        f"unknown extractor {ref!r}; choose one of: {', '.join(extractor_names(view))}, "
        "or give module:Class"
    )


def metric_names(view: dict) -> list[str]:
    extractors = extractor_names(view)
    names = {n for n, m in view["metrics"].items() if m["in_suites"]} | set(view["aliases"])
    for name, m in view["metrics"].items():
        if m["per_extractor"]:
            names |= {f"{name}_{e}" for e in extractors}
    return sorted(names)


def metric_group(name: str, view: dict) -> str | None:
    """The registered metric that a suite's `metrics:` entry `name` runs, or None."""
    in_suites = {n: m for n, m in view["metrics"].items() if m["in_suites"]}
    if name in in_suites:
        return name
    if name in view["aliases"]:
        return view["aliases"][name][0]
    extractors = extractor_names(view)
    for group, m in in_suites.items():
        rest = name.removeprefix(group + "_")
        if m["per_extractor"] and rest != name and rest in extractors:
            return group
    return None


def check_metric(name: str) -> None:
    """A ValueError unless a suite's `metrics:` accepts `name` (as bench.metrics.parse_metric)."""
    view = current()
    if metric_group(name, view) is None:
        names = ", ".join(metric_names(view))
        raise ValueError(f"unknown metric {name!r}; choose one of: {names}")


def metric_extractors(name: str, features: Sequence[str]) -> tuple[str, ...]:
    """The feature spaces suite metric `name` computes in on image data, with the suite's
    `features`, as bench.scoring.plan chooses them; less the dataset's default extractor,
    which plan adds when `features` is empty and which needs no weights file."""
    view = current()
    group = metric_group(name, view)
    spec = view["metrics"][group]
    if not spec["per_extractor"]:
        return tuple(spec["also"])
    if name in view["aliases"]:
        return (view["aliases"][name][1],)
    if name != group:
        return (name.removeprefix(group + "_"),)
    return tuple(dict.fromkeys([*features, *spec["also"]]))


def metric_needs(name: str) -> frozenset[str]:
    """What the metric a suite names needs (bench.metrics.NEEDS), without importing it."""
    view = current()
    return frozenset(view["metrics"][metric_group(name, view)]["needs"])


def model_signature(ref: str) -> InitSignature | None:
    """The __init__ of a registered model (genbench's baselines from the declared table),
    without importing it; None for entry points and module:Class references."""
    sig = current()["model_signatures"].get(ref)
    return None if sig is None else InitSignature(**sig)


def direction(metric: str, view: dict) -> str | None:
    if metric.endswith(("_std", "_floor", "_ceiling", "_lo", "_hi")):
        return None
    best = None  # the column kind with the longest prefix of `metric`
    for m in view["metrics"].values():
        for prefix, how, _, _ in m["columns"]:
            if metric.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, how)
    return best[1] if best else None


def check_rank_metric(metric: str) -> None:
    """A ValueError unless `metric` can rank a leaderboard (bench.metrics.check_rank_metric)."""
    if metric.startswith("throughput_") or direction(metric, current()) not in ("lower", "higher"):
        raise ValueError(
            f"{metric!r} cannot rank models: name a quality metric column that is better "
            "lower or higher, e.g. fd_classifier_n1000_train or modes_captured"
        )


def describe_metrics() -> list[tuple[str, str, str]]:
    """(suite name, columns with directions, summary) for `genbench list metrics`."""
    arrows = {"lower": "↓", "higher": "↑", "closer to 0": "→0", "closer to 1": "→1", None: ""}
    rows = []
    for name, m in sorted(current()["metrics"].items()):
        cols = ", ".join(f"{p}* {arrows[how]}".strip() for p, how, _, _ in m["columns"])
        where = " (per feature space: NAME or NAME_EXTRACTOR)" if m["per_extractor"] else ""
        rows.append((name, cols, m["summary"] + where))
    return rows


def write_declared() -> None:
    text = pprint.pformat(snapshot(), width=96, sort_dicts=False)
    Path(__file__).with_name("declared.py").write_text(
        '"""What genbench\'s own modules register (see bench.names). Written by '
        '`python -m bench.names`;\ndo not edit."""\n\n'
        f"DECLARED = {text}\n"
    )


if __name__ == "__main__":
    write_declared()
