"""The metric registry: each metric group is declared once, next to its math, with
everything the rest of genbench needs to know about it.

A spec names the suite-file group (`fd`, `prdc`, ...), the columns it produces (each a name
prefix with its direction and display order), what it needs (`images`, `labels`, `model`),
and its function. The scorer, the leaderboard's arrows, bold and ranking, `genbench list
metrics`, `eval`'s choices and the suite validation all read this registry, so a new metric
is one decorated function:

    @register_metric("sharpness", columns={"sharpness_": "higher"})
    def sharpness(ctx):
        return {f"sharpness_n{ctx.n}": ...}

Metrics computed in a feature space (`per_extractor=True`) receive the extractor's name and
put its column name in theirs; a suite asks for them either plainly (`fd`: in the suite's
`features`, default the dataset's default extractor) or for one space (`fd_inception`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import UserError
from bench.plugins import load_plugins
from bench.registry import (
    LAZY,
    Registry,
    caller_module,
    declarations,
    package_modules,
    summary,
    target_of,
)
from bench.translation.checks import translation_metric_fits

if TYPE_CHECKING:
    from bench.data import ImageDataset

DIRECTIONS = ("lower", "higher", "closer to 0", "closer to 1")
NEEDS = frozenset({"images", "labels", "model", "sample_labels", "factors", "translation", "pairs"})
# quality: a model's quality (default with a direction); speed: a sampling-speed figure;
# flag: marks another column's value (e.g. measured on a busy machine); info: informational
KINDS = ("quality", "speed", "flag", "info")
ARTIFACTS = frozenset({"nearest_neighbours", "per_sample"})  # files a job draws for a metric


@dataclass(frozen=True)
class Reliability:
    """The sample size below which a metric's documented authors do not vouch for its value:
    fewer than `min_n` samples, or fewer than `per_dim` x the feature dimension."""

    why: str  # the reason, one clause
    min_n: int = 0
    per_dim: float = 0

    def threshold(self, dim: int | None) -> int:
        by_dim = int(self.per_dim * dim) if self.per_dim and dim is not None else 0
        return max(self.min_n, by_dim)

    def warning(self, name: str, n: int, dim: int | None) -> str | None:
        """One line when n samples are too few for metric `name`, else None."""
        need = self.threshold(dim)
        if n >= need:
            return None
        return f"small n: {name} with n = {n} < {need}: {self.why}"


@dataclass(frozen=True)
class Column:
    prefix: str  # every column of this kind starts with it
    direction: str | None  # one of DIRECTIONS, or None for informational columns
    order: float  # position on the leaderboard (lower first)
    shown: bool = True  # False: recorded in MLflow, not a leaderboard column
    kind: str = "quality"  # one of KINDS
    # place in a guidance sweep (figure and table): 1 the fidelity axis, 2 its per-class
    # form, 3 and up what it is plotted against; a fraction ranks the alternatives for one
    # place (the lowest the board has wins); 0: not in the sweep
    sweep: float = 0
    headline: bool = False  # among the few columns of the report's headline table

    @property
    def rankable(self) -> bool:
        """A quality column better lower or higher can rank a leaderboard."""
        return self.kind == "quality" and self.direction in ("lower", "higher")


@dataclass(frozen=True)
class MetricSpec:
    """What a metric group declares; its function (and `check`) load on first use."""

    name: str  # the suite-file group
    columns: tuple[Column, ...]
    needs: frozenset[str]  # images: skipped on point data; labels: a dataset with labels;
    #                        model: the model itself (skipped for samples-file jobs);
    #                        sample_labels: class-conditional samples (ctx.fake_labels);
    #                        factors: a dataset with known factors (meta["factors_train"])
    #                        translation: a translation task; pairs: a paired one
    per_extractor: bool = False
    # per_extractor: feature spaces always added to the default ones; else the feature
    # spaces it computes in (cmmd's CLIP), so that their weights are checked before training
    also: tuple[str, ...] = ()
    summary: str = ""
    in_suites: bool = True  # False: columns written by something else (a human study)
    artifacts: frozenset[str] = frozenset()  # of ARTIFACTS: files a job draws for it
    reliable: Reliability | None = None  # below what sample size to warn, and why

    @property
    def compute(self) -> Callable[..., dict[str, float]]:
        """(ctx) or, per_extractor, (ctx, extractor) -> {column: value}."""
        return METRICS.load(self.name).obj

    @property
    def check(self) -> Callable[[int, int], None] | None:
        """preflight: (n samples, feature dimension) -> raises UserError when it cannot run."""
        return METRICS.load(self.name).extras.get("check")


def _declared_metrics() -> Iterator[tuple[str, str, MetricSpec]]:
    for d in declarations(_own_modules(), ("register_metric", "register_columns")):
        if d.function == "register_columns":
            yield d.args[0], d.target, columns_spec(*d.args, **d.kwargs)
        else:
            kwargs = {k: v for k, v in d.kwargs.items() if k != "check"}
            yield d.args[0], d.target, metric_spec(*d.args, **kwargs, doc=d.doc)


def _declared_aliases() -> Iterator[tuple[str, str, tuple[str, str]]]:
    for d in declarations(_own_modules(), ("register_alias",)):
        yield d.args[0], d.target, (d.args[1], d.args[2])


def _own_modules():
    return package_modules(Path(__file__).parent, __name__)


METRICS: Registry[MetricSpec] = Registry("metric", _declared_metrics)
ALIASES: Registry[tuple[str, str]] = Registry("metric alias", _declared_aliases)


def metric_spec(
    name: str,
    *,
    columns: dict[str, str | None | tuple],
    needs: Iterable[str] = (),
    per_extractor: bool = False,
    also: Iterable[str] = (),
    artifacts: Iterable[str] = (),
    reliable: dict | None = None,
    doc: str | None = None,
    in_suites: bool = True,
) -> MetricSpec:
    """The spec a registration's literal arguments declare."""
    if LAZY in (columns, needs, per_extractor, also, artifacts, reliable):
        raise ValueError(
            f"metric {name!r}: declare columns, needs, per_extractor, also, artifacts and "
            "reliable as literals"
        )
    needs, artifacts = frozenset(needs), frozenset(artifacts)
    if needs - NEEDS:
        raise ValueError(f"metric {name!r}: unknown needs {sorted(needs - NEEDS)}")
    if artifacts - ARTIFACTS:
        raise ValueError(f"metric {name!r}: unknown artifacts {sorted(artifacts - ARTIFACTS)}")
    cols = tuple(_declared_column(name, prefix, how) for prefix, how in columns.items())
    try:
        reliability = Reliability(**reliable) if reliable is not None else None
    except TypeError as e:
        raise ValueError(f"metric {name!r}: reliable: {e}") from None
    return MetricSpec(
        name,
        cols,
        needs,
        per_extractor,
        tuple(also),
        summary(doc),
        in_suites,
        artifacts,
        reliability,
    )


def _declared_column(metric: str, prefix: str, how: str | None | tuple | dict) -> Column:
    """A column from its declaration: a direction, (direction, order[, shown]), or a dict of
    Column's fields (direction, order, shown, kind, sweep, headline)."""
    if isinstance(how, dict):
        fields = {"direction": None, "order": 100.0, **how}
    elif isinstance(how, tuple):
        fields = dict(zip(("direction", "order", "shown"), how, strict=False))
    else:
        fields = {"direction": how, "order": 100.0}
    fields.setdefault("kind", "quality" if fields["direction"] else "info")
    if fields["direction"] not in (*DIRECTIONS, None):
        raise ValueError(f"metric {metric!r}: direction {fields['direction']!r} of {prefix!r}")
    if fields["kind"] not in KINDS:
        raise ValueError(f"metric {metric!r}: kind {fields['kind']!r} of {prefix!r}")
    try:
        return Column(prefix, **fields)
    except TypeError as e:
        raise ValueError(f"metric {metric!r}: column {prefix!r}: {e}") from None


def register_metric(
    name: str,
    *,
    columns: dict[str, str | None | tuple],
    needs: Iterable[str] = (),
    per_extractor: bool = False,
    also: Iterable[str] = (),
    artifacts: Iterable[str] = (),
    reliable: dict | None = None,
    check: Callable[[int, int], None] | None = None,
) -> Callable[[Callable], Callable]:
    """Register a metric group. `columns` maps each column prefix to its direction, or to
    (direction, order) to place it on the leaderboard (default: after the built-ins), or to
    (direction, order, False) for a column recorded but not shown, or to a dict of Column's
    fields (`kind`: speed, flag or info columns never rank; `headline`: shown in the report's
    headline table). `reliable` (Reliability's fields: why, min_n, per_dim) is the sample size
    below which `genbench run`, `eval` and the leaderboard footer warn. Its docstring's first
    paragraph is its summary in `genbench list metrics`."""
    spec = metric_spec(
        name,
        columns=columns,
        needs=needs,
        per_extractor=per_extractor,
        also=also,
        artifacts=artifacts,
        reliable=reliable,
    )

    def wrap(fn: Callable) -> Callable:
        METRICS.add(
            name, target_of(fn), replace(spec, summary=summary(fn.__doc__)), fn, check=check
        )
        return fn

    return wrap


def columns_spec(
    group: str, columns: dict[str, str | None | tuple], summary: str = ""
) -> MetricSpec:
    return replace(metric_spec(group, columns=columns, in_suites=False), summary=summary)


def register_columns(group: str, columns: dict[str, str | None | tuple], summary: str = "") -> None:
    """Columns that something other than a suite's scoring writes onto job runs (a human
    study's scores): the leaderboard reads their directions here; suites cannot ask for
    them."""

    def written_elsewhere(*args):
        raise ValueError(f"{group} columns are not computed by a suite")

    METRICS.add(group, caller_module(), columns_spec(group, columns, summary), written_elsewhere)


def register_alias(suite_name: str, metric: str, extractor: str) -> None:
    """A suite name for one feature-space metric in one space (`fid_inception`)."""
    ALIASES.add(suite_name, caller_module(), (metric, extractor), (metric, extractor))


def specs() -> dict[str, MetricSpec]:
    load_plugins()
    return {name: entry.meta for name, entry in METRICS.entries.items()}


def _suite_specs() -> dict[str, MetricSpec]:
    return {name: spec for name, spec in specs().items() if spec.in_suites}


def metric_names() -> list[str]:
    """Every name a suite's `metrics:` accepts: groups, and feature-space groups with an
    extractor (`fd_pixels`, `kid_inception`, ...)."""
    from bench.features import feature_space_names

    suite_specs = _suite_specs()
    names = set(suite_specs) | set(ALIASES.names())
    for spec in suite_specs.values():
        if spec.per_extractor:
            names |= {f"{spec.name}_{e}" for e in feature_space_names()}
    return sorted(names)


def metric_extractors(name: str, features: Sequence[str]) -> tuple[str, ...]:
    """The feature spaces suite metric `name` computes in on image data, with the suite's
    `features`, as bench.scoring.plan chooses them; less the dataset's default extractor,
    which plan adds when `features` is empty and which needs no weights file."""
    spec, named = parse_metric(name)
    if not spec.per_extractor:
        return spec.also
    if named is not None:
        return (named,)
    return tuple(dict.fromkeys([*features, *spec.also]))


def fits_data(name: str, needs: Iterable[str], data: ImageDataset, n: int | None = None) -> bool:
    """Whether suite metric `name`, needing `needs`, applies to the dataset (image metrics
    skip point data); a UserError when it cannot run on it with n samples. Takes declared
    needs too, so it is checked before torch loads."""
    if "images" in needs and data.kind != "images":
        return False
    if needs & {"translation", "pairs"} and not translation_metric_fits(name, needs, data):
        return False
    if "labels" in needs and (data.train.y is None or not data.num_classes):
        raise UserError(f"metric {name!r} needs a labelled dataset and {data.name!r} has no labels")
    if "factors" in needs and "factors_train" not in data.meta:
        raise UserError(
            f"metric {name!r} needs a dataset with known generating factors (e.g. shapes) and "
            f"{data.name!r} has none"
        )
    if "sample_labels" in needs and n is not None and n < 2 * data.num_classes:
        raise UserError(
            f"metric {name!r} scores each class apart and needs at least 2 samples of each "
            f"of {data.name!r}'s {data.num_classes} classes: set n_samples to at least "
            f"{2 * data.num_classes}"
        )
    return True


def parse_metric(name: str) -> tuple[MetricSpec, str | None]:
    """A suite metric name -> (spec, the extractor it names or None for the default)."""
    from bench.features import feature_space_names

    all_specs = _suite_specs()
    if name in all_specs:
        return all_specs[name], None
    if name in ALIASES:
        metric, extractor = ALIASES.meta(name)
        return all_specs[metric], extractor
    for spec in all_specs.values():
        rest = name.removeprefix(spec.name + "_")
        if spec.per_extractor and rest != name and rest in feature_space_names():
            return spec, rest
    raise ValueError(f"unknown metric {name!r}; choose one of: {', '.join(metric_names())}")


def _declaration(metric: str) -> tuple[str, Column] | None:
    """(metric group, declared column) that `metric` is (the longest declared prefix)."""
    best = None
    for spec in specs().values():
        for col in spec.columns:
            if metric.startswith(col.prefix) and (
                best is None or len(col.prefix) > len(best[1].prefix)
            ):
                best = (spec.name, col)
    return best


def column(metric: str) -> Column | None:
    """The declared column that `metric` is (the longest declared prefix), or None."""
    found = _declaration(metric)
    return found[1] if found else None


def column_group(metric: str) -> str | None:
    """The metric group (`fd`, `prdc`, ...) that declares column `metric`, or None."""
    found = _declaration(metric)
    return found[0] if found else None


def direction(metric: str) -> str | None:
    """'lower', 'higher', 'closer to 0' / 'closer to 1', or None for informational columns."""
    if metric.endswith(("_std", "_floor", "_ceiling", "_lo", "_hi")):
        return None
    col = column(metric)
    return col.direction if col else None


def shown(metric: str) -> bool:
    col = column(metric)
    return col.shown if col else True


def column_kind(metric: str) -> str:
    """One of KINDS; info for a column nothing declares."""
    col = column(metric)
    return col.kind if col else "info"


def rankable(metric: str) -> bool:
    col = column(metric)
    return col is not None and col.rankable and direction(metric) is not None


def column_order(metric: str) -> tuple[float, str]:
    col = column(metric)
    return (col.order if col else 1000.0, metric)


def artifacts_of(names: Iterable[str]) -> frozenset[str]:
    """The files (of ARTIFACTS) a job draws for these suite metrics."""
    return frozenset().union(*(parse_metric(name)[0].artifacts for name in names))


def check_rank_metric(metric: str) -> None:
    """A leaderboard can be ranked by a metric that is better either lower or higher."""
    if not rankable(metric):
        raise ValueError(
            f"{metric!r} cannot rank models: name a quality metric column that is better "
            "lower or higher, e.g. fd_classifier_n1000_train or modes_captured"
        )


def describe() -> list[tuple[str, str, str, list[str]]]:
    """(group name, columns with directions, summary, the suite names it runs under) for
    `genbench list metrics`; no suite names for columns a suite does not compute."""
    arrows = {"lower": "↓", "higher": "↑", "closer to 0": "→0", "closer to 1": "→1", None: ""}
    names_of = suite_names()
    rows = []
    for name, spec in sorted(specs().items()):
        cols = ", ".join(f"{c.prefix}* {arrows[c.direction]}".strip() for c in spec.columns)
        where = " (per feature space: NAME or NAME_EXTRACTOR)" if spec.per_extractor else ""
        rows.append((name, cols, spec.summary + where, names_of.get(name, [])))
    return rows


def suite_names() -> dict[str, list[str]]:
    """Group -> the names a suite's `metrics:` runs it under, one per feature space
    (`fd_pixels`, ...) for a per-extractor group, and its aliases (`fid_inception`)."""
    others: dict[str, list[str]] = {}
    for n in metric_names():
        group = parse_metric(n)[0].name
        if n != group:
            others.setdefault(group, []).append(n)
    return {
        group: others.get(group, []) if spec.per_extractor else [group, *others.get(group, [])]
        for group, spec in _suite_specs().items()
    }
