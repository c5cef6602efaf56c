"""One generic registry for every kind of plug-in (metrics, extractors, datasets, models),
and the reader of the declarations that genbench's own modules make.

An entry holds torch-free metadata (what `genbench list` prints and a suite's checks read)
and a lazy target, "module:attr", imported on first use. Genbench's built-ins are declared
by the very decorators and calls that register them (`@register_metric(...)`,
`register_alias(...)`): `scan` reads those from the source of each kind's folder with
`ast`, so listing names and checking a suite import neither those modules nor torch, and
nothing is copied. When the module is imported later its decorator fills in the declared
entry; any other second registration of a name is an error. A registration's arguments
must be literals, except the few each kind lists as resolved when the target loads.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Generic, TypeVar

M = TypeVar("M")
LAZY = object()  # an argument that is not a literal: known once the target loads


@dataclass
class Entry(Generic[M]):
    name: str
    target: str  # "module:attr", or "module" for a registration that holds no object
    meta: M  # torch-free: what the registration says
    declared: M | None = None  # what the source says (None: registered at run time)
    obj: Any = None  # the loaded target
    extras: dict[str, Any] = field(default_factory=dict)  # non-literal arguments


class Registry(Generic[M]):
    """Names -> entries of one kind; `declare` yields the (name, target, meta) that the
    source declares, read on first use."""

    def __init__(self, kind: str, declare: Callable[[], Iterable[tuple[str, str, M]]]):
        self.kind = kind
        self._declare = declare
        self._entries: dict[str, Entry[M]] | None = None

    @property
    def entries(self) -> dict[str, Entry[M]]:
        if self._entries is None:
            self._entries = {}
            for name, target, meta in self._declare():
                if name in self._entries:
                    raise ValueError(f"{self.kind} {name!r} is declared twice")
                self._entries[name] = Entry(name, target, meta, declared=meta)
        return self._entries

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def names(self) -> list[str]:
        return sorted(self.entries)

    def meta(self, name: str) -> M:
        return self.entries[name].meta

    def add(self, name: str, target: str, meta: M, obj: Any = None, **extras: Any) -> None:
        """A registration executing: it fills in the entry its source declared, or adds one."""
        entry = self.entries.get(name)
        if entry is None:
            self.entries[name] = Entry(name, target, meta, None, obj, extras)
        elif entry.declared is not None and entry.obj is None and entry.target == target:
            entry.meta, entry.obj, entry.extras = meta, obj, extras
        else:
            raise ValueError(f"{self.kind} {name!r} is registered twice")

    def load(self, name: str) -> Entry[M]:
        """The entry with its target imported (the import runs the registration)."""
        entry = self.entries[name]
        if entry.obj is None:
            importlib.import_module(entry.target.partition(":")[0])
            if entry.obj is None:
                raise RuntimeError(f"{entry.target} did not register {self.kind} {name!r}")
        return entry


def target_of(obj: Any) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def caller_module() -> str:
    """The module whose code called the function calling this (a registration holding no
    object is that module's)."""
    return sys._getframe(2).f_globals.get("__name__", "?")


def summary(doc: str | None) -> str:
    """A docstring's first paragraph on one line."""
    return " ".join(inspect.cleandoc(doc or "").split("\n\n")[0].split())


# -- reading declarations from the source ----------------------------------------------------


@dataclass(frozen=True)
class Declaration:
    """One module-level registering call, read from the source."""

    function: str  # register_metric, register_model, ...
    args: tuple  # literal values, LAZY where not literal
    kwargs: dict[str, Any]
    module: str
    target: str  # "module:attr" of the decorated function or class, else "module"
    doc: str | None  # the decorated object's docstring
    cls: ClassInfo | None = None  # a decorated class: what its source says


@dataclass(frozen=True)
class ClassInfo:
    params: dict[str, bool] | None  # __init__'s keyword parameters -> has a default
    var_keyword: bool
    attrs: dict[str, Any]  # literal class attributes (SAMPLE_OPTIONS, reference, ...)


def package_modules(folder: Path, package: str) -> Iterator[tuple[str, Path]]:
    """(module name, file) of each .py file in a package folder."""
    for path in sorted(folder.glob("*.py")):
        yield (package if path.stem == "__init__" else f"{package}.{path.stem}"), path


@cache
def scan_file(path: Path, module: str) -> tuple[Declaration, ...]:
    """The registering calls of one source file, read through a disk cache keyed by the
    file's path, size and modification time: parsing the sources is most of what a `list`
    or a refused suite costs (about 0.1 s a run), reading the cache a tenth of that."""
    stat = path.stat()
    cache_file = _scan_cache_file(path, module, stat.st_size, stat.st_mtime_ns)
    cached = _read_scan_cache(cache_file)
    if cached is not None:
        return cached
    found = _scan_source(path, module)
    _write_scan_cache(cache_file, found)
    return found


# What a scan cache file holds changes with this number (Declaration's fields, their codes).
SCAN_CACHE_FORMAT = 1


def _scan_cache_file(path: Path, module: str, size: int, mtime_ns: int) -> Path:
    from bench.cache import default_cache_dir, hash_key

    key = hash_key(str(path.resolve()), module, size, mtime_ns, SCAN_CACHE_FORMAT)
    return default_cache_dir() / "declarations" / f"{key}.txt"


def _encode(found: tuple[Declaration, ...]) -> str:
    """The declarations as one Python literal (read back by ast.literal_eval, which runs no
    code); a non-literal argument (LAZY) as (False, None), a literal v as (True, v)."""

    def arg(v: Any) -> tuple[bool, Any]:
        return (False, None) if v is LAZY else (True, v)

    return repr(tuple(
        (d.function, tuple(arg(a) for a in d.args), {k: arg(v) for k, v in d.kwargs.items()},
         d.module, d.target, d.doc,
         None if d.cls is None else (d.cls.params, d.cls.var_keyword, d.cls.attrs))
        for d in found
    ))  # fmt: skip


def _decode(text: str) -> tuple[Declaration, ...]:
    def arg(v: tuple[bool, Any]) -> Any:
        return v[1] if v[0] else LAZY

    return tuple(
        Declaration(function, tuple(arg(a) for a in args), {k: arg(v) for k, v in kwargs.items()},
                    module, target, doc, None if cls is None else ClassInfo(*cls))
        for function, args, kwargs, module, target, doc, cls in ast.literal_eval(text)
    )  # fmt: skip


def _read_scan_cache(cache_file: Path) -> tuple[Declaration, ...] | None:
    try:
        return _decode(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None  # absent, unreadable or not ours: the source is read instead


def _write_scan_cache(cache_file: Path, found: tuple[Declaration, ...]) -> None:
    from bench.cache import atomic_write_bytes

    text = _encode(found)
    try:
        if _decode(text) != found:  # a literal repr does not give back (nan, 1e999): not kept
            return
        atomic_write_bytes(cache_file, text.encode())
    except (OSError, ValueError, SyntaxError):
        pass  # a cache that cannot be written only costs the next run the parse


def _scan_source(path: Path, module: str) -> tuple[Declaration, ...]:
    text = path.read_text(encoding="utf-8")
    if "register_" not in text:
        return ()
    tree = ast.parse(text, str(path))
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    found = []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            calls = [(node.value, None)]
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            calls = [(d, node) for d in node.decorator_list if isinstance(d, ast.Call)]
        else:
            continue
        for call, obj in calls:
            if isinstance(call.func, ast.Name) and call.func.id.startswith("register_"):
                found.append(_declaration(call, obj, module, classes))
    return tuple(found)


def _declaration(call: ast.Call, obj: ast.AST | None, module: str, classes: dict) -> Declaration:
    return Declaration(
        call.func.id,
        tuple(_literal(a) for a in call.args),
        {k.arg: _literal(k.value) for k in call.keywords if k.arg},
        module,
        f"{module}:{obj.name}" if obj is not None else module,
        ast.get_docstring(obj) if obj is not None else None,
        _class_info(obj, classes) if isinstance(obj, ast.ClassDef) else None,
    )


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return LAZY


def _class_info(node: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> ClassInfo:
    """A class's __init__ keywords and literal attributes, inherited from the bases defined
    in the same module (a base from elsewhere leaves __init__ unknown: params None)."""
    attrs: dict[str, Any] = {}
    init = None
    for cls in _mro(node, classes):
        if cls is None:
            return ClassInfo(None, False, attrs) if init is None else _with_init(init, attrs)
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                name = getattr(stmt.targets[0], "id", None)
                value = _literal(stmt.value)
                if name and name not in attrs and value is not LAZY:
                    attrs[name] = value
            elif isinstance(stmt, ast.FunctionDef) and stmt.name == "__init__" and init is None:
                init = stmt
    return _with_init(init, attrs) if init is not None else ClassInfo({}, False, attrs)


def _mro(node: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> Iterator[ast.ClassDef | None]:
    """The class, then its bases depth first; None for a base not defined in the module."""
    yield node
    for base in node.bases:
        if isinstance(base, ast.Name) and base.id in classes:
            yield from _mro(classes[base.id], classes)
        elif not (isinstance(base, ast.Name) and base.id == "object"):
            yield None


def _with_init(init: ast.FunctionDef, attrs: dict) -> ClassInfo:
    a = init.args
    positional = [*a.posonlyargs, *a.args]
    with_default = {p.arg for p in positional[len(positional) - len(a.defaults) :]}
    params = {p.arg: p.arg in with_default for p in a.args if p is not positional[0]}
    params |= {p.arg: d is not None for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)}
    return ClassInfo(params, a.kwarg is not None, attrs)


def declarations(
    modules: Iterable[tuple[str, Path]], functions: Iterable[str]
) -> Iterator[Declaration]:
    wanted = set(functions)
    for module, path in modules:
        for d in scan_file(path, module):
            if d.function in wanted:
                yield d
