"""Where registrations come from besides genbench's own declarations (bench.registry): every
module named by a `genbench.plugins` entry point of another installed package, the modules
in the environment variable GENBENCH_PLUGINS (comma-separated), and a suite's `plugins:`;
each imported once."""

from __future__ import annotations

import importlib
import os
import sys
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType

from bench.errors import UserError, first_line
from bench.registry import package_modules, scan_file

PLUGIN_GROUP = "genbench.plugins"
_loaded: set[str] = set()


def load_plugins() -> None:
    """Import every plug-in module: GENBENCH_PLUGINS, and other packages' `genbench.plugins`
    entry points (genbench's own, its baselines, are declared: bench.registry reads them)."""
    named = [m.strip() for m in os.environ.get("GENBENCH_PLUGINS", "").split(",") if m.strip()]
    for module in named:
        import_plugin(module)
    for ep in _split_entry_points(PLUGIN_GROUP, tuple(sys.path))[1]:
        if ep.value not in _loaded:
            _loaded.add(ep.value)
            try:
                loaded = ep.load()
            except Exception as e:
                raise UserError(f"plug-in {ep.name!r} ({ep.value}) failed to load: {e}") from None
            if isinstance(loaded, ModuleType):
                for name in registering_modules(loaded):
                    import_plugin(name)


def plugin_entry_points(group: str) -> tuple[EntryPoint, ...]:
    """The installed packages' entry points of `group`. Scanning every distribution's
    metadata takes about 15 ms and registry lookups ask per metric and job (hundreds of
    times in a suite), so the scan is kept per sys.path, which is what it depends on."""
    return _scan_entry_points(group, tuple(sys.path))


@cache
def _scan_entry_points(group: str, path: tuple[str, ...]) -> tuple[EntryPoint, ...]:
    return tuple(entry_points(group=group))


def own_entry_points(group: str) -> tuple[EntryPoint, ...]:
    """genbench's own entry points of `group` (its baselines, declared in its pyproject)."""
    return _split_entry_points(group, tuple(sys.path))[0]


@cache
def _split_entry_points(
    group: str, path: tuple[str, ...]
) -> tuple[tuple[EntryPoint, ...], tuple[EntryPoint, ...]]:
    """(genbench's own, other packages') entry points of `group`. `ep.dist.name` parses the
    distribution's metadata on every access (about 3 ms; `genbench list metrics` looked
    thousands of times), so each is read once per sys.path."""
    own: list[EntryPoint] = []
    others: list[EntryPoint] = []
    for ep in _scan_entry_points(group, path):
        (own if ep.dist is not None and ep.dist.name == "genbench" else others).append(ep)
    return tuple(own), tuple(others)


def import_plugin(module: str) -> None:
    """Import a module for its registrations (a suite's `plugins:` runs this module's code);
    a package with every module of it that registers something, so a new file in a plug-in
    package needs no import added."""
    if module in _loaded:
        return
    _loaded.add(module)
    try:
        imported = import_module(module, f"plug-in module {module!r}")
    except UserError:
        _loaded.discard(module)
        raise
    for name in registering_modules(imported):
        import_plugin(name)


def registering_modules(module: ModuleType) -> list[str]:
    """The modules of a package that register something at module level (bench.registry
    reads them), in name order; none for a plain module."""
    if not hasattr(module, "__path__") or module.__file__ is None:
        return []
    folder = Path(module.__file__).parent
    return [
        name
        for name, path in package_modules(folder, module.__name__)
        if name != module.__name__ and scan_file(path, name)
    ]


def import_module(module: str, what: str) -> ModuleType:
    """importlib.import_module; a name that is not absolute, a module that is not found, and
    whatever the module raises while it runs (a SyntaxError, its own exceptions) are one-line
    UserErrors that start with `what`."""
    if not all(part.isidentifier() for part in module.split(".")):
        raise UserError(
            f"{what} is not an absolute module name; give it as package.module (no leading "
            "dots), importable from PYTHONPATH"
        )
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise UserError(f"{what} cannot be imported ({e}); check PYTHONPATH") from None
    except Exception as e:  # the module's own code failed: name it and its error
        reason = first_line(e) or "(no message)"
        raise UserError(f"{what}: importing it raised {type(e).__name__}: {reason}") from None


def find_object(kind: str, ref: str, group: str) -> object | None:
    """What `ref` names as an entry point of `group` or as `module:attribute` (importing and
    running that module), or None when it is neither; failures are one-line UserErrors."""
    eps = {ep.name: ep for ep in plugin_entry_points(group)}
    if ref in eps:
        try:
            return eps[ref].load()
        except Exception as e:
            msg = f"{kind} {ref!r}: entry point {eps[ref].value} failed to load: {e}"
            raise UserError(msg) from None
    if ":" not in ref:
        return None
    module_name, _, attr = ref.partition(":")
    module = import_module(module_name, f"{kind} {ref!r}: module {module_name!r}")
    if not hasattr(module, attr):
        raise UserError(f"{kind} {ref!r}: module {module_name!r} has no attribute {attr!r}")
    return getattr(module, attr)
