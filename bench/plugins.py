"""Where registrations come from: genbench's built-in metric and extractor modules, every
module named by a `genbench.plugins` entry point of an installed package (genbench's own
baselines are found this way, like any plug-in), the modules in the environment variable
GENBENCH_PLUGINS (comma-separated), and a suite's `plugins:`; each imported once."""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from bench.errors import UserError

PLUGIN_GROUP = "genbench.plugins"
BUILTIN_MODULES = (
    "bench.features.pixels",
    "bench.features.classifier",
    "bench.features.inception",
    "bench.features.foundation",
    "bench.metrics.fd",
    "bench.metrics.kid",
    "bench.metrics.prdc",
    "bench.metrics.memorization",
    "bench.metrics.modes",
    "bench.metrics.inception_score",
    "bench.metrics.model",
    "bench.metrics.cmmd",
    "bench.metrics.vendi",
    "bench.study.hype",
)
_loaded: set[str] = set()


def load_plugins() -> None:
    named = [m.strip() for m in os.environ.get("GENBENCH_PLUGINS", "").split(",") if m.strip()]
    for module in (*BUILTIN_MODULES, *named):
        import_plugin(module)
    for ep in entry_points(group=PLUGIN_GROUP):
        if ep.value not in _loaded:
            _loaded.add(ep.value)
            try:
                ep.load()
            except Exception as e:
                raise UserError(f"plug-in {ep.name!r} ({ep.value}) failed to load: {e}") from None


def import_plugin(module: str) -> None:
    """Import a module for its registrations (a suite's `plugins:` runs this module's code)."""
    if module in _loaded:
        return
    _loaded.add(module)
    try:
        importlib.import_module(module)
    except ImportError as e:
        _loaded.discard(module)
        msg = f"plug-in module {module!r} cannot be imported ({e}); check PYTHONPATH"
        raise UserError(msg) from None
