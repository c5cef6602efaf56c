"""Suite files: YAML -> a validated, fully resolved Suite -> one Job per (dataset, model, seed).

Any mistake becomes one UserError line naming the file, the field and the valid choices.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bench.data import dataset_names, is_known_dataset
from bench.errors import UserError
from bench.executors import suite_executor_options
from bench.features import resolve_extractor, resolve_feature_space
from bench.metrics import check_rank_metric, parse_metric
from bench.models import check_model, check_model_files, model_prefix
from bench.npz import MAX_IMAGES
from bench.plugins import import_plugin
from bench.safeyaml import YamlTooLarge, load_yaml

MAX_SUITE_BYTES = 256 * 2**10
# Sampling seeds are 1_000_003 * seed + 17 and must fit torch's 64-bit manual_seed; 2**32 - 1
# keeps that, and numpy's legacy seeding, far inside range.
MAX_SEED = 2**32 - 1
MAX_BATCH = 2**16
MAX_OPTIONS = 100
MAX_OPTION_ITEMS = 1000
MAX_OPTION_TEXT = 1000
NAME_RULE = "starts with a letter, digit or underscore and holds only those, '.' and '-'"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BudgetSpec(Strict):
    steps: int = Field(ge=0, le=10**9, description="optimizer steps, the same for every family")
    seconds: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="optional wall-clock cap"
    )


class ModelEntry(Strict):
    name: str = Field(pattern=r"^[\w.\-+]+$", description="label on the leaderboard")
    model: str | None = Field(default=None, description="registry name or module:Class")
    options: dict[str, Any] = Field(default_factory=dict, max_length=MAX_OPTIONS)
    checkpoint: Path | None = Field(default=None, description="load these weights, skip training")
    samples: Path | None = Field(default=None, description="score these samples (.npz or folder)")
    # run on these of the suite's datasets only (default: all), e.g. a paired-only
    # translation model in a suite that also has unpaired tasks
    datasets: list[str] | None = Field(default=None, min_length=1, max_length=100)

    @property
    def ref(self) -> str:
        return self.model or self.name

    @field_validator("options")
    @classmethod
    def _small_plain_options(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key, value in v.items():
            check_option(key, value)
        return v

    @model_validator(mode="after")
    def _known_model(self) -> ModelEntry:
        if self.samples is None:
            check_model(self.ref)
        return self


class ExecutorEntry(Strict):
    """Where the suite's jobs run (`genbench run --executor` and its options win over it)."""

    name: str = Field(default="local", max_length=100)
    options: dict[str, str | int | float] = Field(default_factory=dict, max_length=MAX_OPTIONS)

    @model_validator(mode="after")
    def _declared_options(self) -> ExecutorEntry:
        suite_executor_options(self.name, self.options)  # a UserError names the option
        return self


class Suite(Strict):
    # modules imported first, for the models, metrics and extractors they register
    plugins: list[str] = Field(default_factory=list, max_length=100)
    name: str = Field(max_length=100, description="the MLflow experiment and output folder")
    version: str = Field(default="1", max_length=100)
    description: str = Field(default="", max_length=10_000)
    datasets: list[str] = Field(min_length=1, max_length=100)
    models: list[ModelEntry] = Field(min_length=1, max_length=1000)
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] = Field(
        default=[0], min_length=1, max_length=1000
    )
    n_samples: int = Field(default=1000, ge=2, le=MAX_IMAGES)
    sample_batch_size: int = Field(default=256, ge=1, le=MAX_BATCH)
    budget: BudgetSpec
    metrics: list[str] = Field(min_length=1)
    # feature spaces of metrics named without one (fd, kid, prdc, memorization, fdinf);
    # default: the dataset's (classifier for labelled images, inception for others, points
    # as they are)
    features: list[str] = Field(default_factory=list)
    # extractor -> weights file, for extractors whose weights no package ships (DINOv2,
    # CLIP); default: the torch hub cache under $TORCH_HOME
    weights: dict[str, Path] = Field(default_factory=dict)
    # images/s at each size goes to the report's throughput plot; the largest is the column
    throughput_batch_sizes: list[Annotated[int, Field(ge=1, le=MAX_BATCH)]] = Field(
        default=[1, 16, 64, 256], min_length=1, max_length=100
    )
    # the classes asked of class-conditional models (others ignore it): balanced, sample i
    # of class i % K; train, drawn from the training split's label frequencies
    labels: Literal["balanced", "train"] | None = None
    # metric columns that rank the learned models, later ones breaking ties (default: the
    # first FD/FID column); recorded on the MLflow experiment, so the report follows it
    rank_by: list[str] = Field(default_factory=list)
    # where the jobs run: an executor and its options (genbench list executors)
    executor: ExecutorEntry | None = None
    # metrics during training (bench.training_eval): every `eval_every` optimizer steps (and
    # at the last) a trained model scores `eval_n` samples on `eval_metrics` (default: the
    # suite's first metric); `keep: best` keeps the step of lowest FD against `keep_split`
    eval_every: int | None = Field(default=None, ge=1, le=10**9)
    eval_metrics: list[str] = Field(default_factory=list, max_length=100)
    eval_n: int = Field(default=200, ge=2, le=MAX_IMAGES)
    keep: Literal["last", "best"] = "last"
    keep_split: Literal["train", "test"] = "test"

    @property
    def label_mode(self) -> str:
        return self.labels or "balanced"

    @field_validator("plugins")
    @classmethod
    def _import_plugins(cls, v: list[str]) -> list[str]:
        for module in v:
            import_plugin(module)
        return v

    @field_validator("features")
    @classmethod
    def _known_extractors(cls, v: list[str]) -> list[str]:
        for name in v:
            resolve_feature_space(name)  # a UserError for an unknown extractor
        return v

    @field_validator("weights")
    @classmethod
    def _weights_for_extractors(cls, v: dict[str, Path]) -> dict[str, Path]:
        for name in v:
            if not resolve_extractor(name).takes_weights:
                raise ValueError(f"extractor {name!r} takes no weights file")
        return v

    @field_validator("rank_by", mode="before")
    @classmethod
    def _rank_by_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("rank_by")
    @classmethod
    def _rank_by_ranks(cls, v: list[str]) -> list[str]:
        for name in v:
            check_rank_metric(name)
        return v

    @field_validator("throughput_batch_sizes")
    @classmethod
    def _sorted(cls, v: list[int]) -> list[int]:
        return sorted(set(v))

    @field_validator("name")
    @classmethod
    def _folder_name(cls, v: str) -> str:
        if not re.fullmatch(r"\w[\w.\-]*", v):
            raise ValueError(f"{v!r} names the output folder: it {NAME_RULE}")
        return v

    @field_validator("version", mode="before")
    @classmethod
    def _version_str(cls, v: Any) -> str:
        return str(v)

    @field_validator("datasets")
    @classmethod
    def _known_datasets(cls, v: list[str]) -> list[str]:
        for name in v:
            if not is_known_dataset(name):
                names = ", ".join(dataset_names())
                raise ValueError(f"unknown dataset {name!r}; choose one of: {names}")
        return v

    @field_validator("metrics", "eval_metrics")
    @classmethod
    def _known_metrics(cls, v: list[str]) -> list[str]:
        for name in v:
            parse_metric(name)  # a ValueError for an unknown metric
        return v

    @model_validator(mode="after")
    def _eval_needs_eval_every(self) -> Suite:
        keys = ("eval_metrics", "eval_n", "keep", "keep_split")
        asked = [k for k in keys if k in self.model_fields_set]
        if self.eval_every is None and asked:
            raise ValueError(f"{asked[0]} applies with eval_every: set eval_every (steps)")
        return self

    @property
    def training_metrics(self) -> list[str]:
        """What a training job scores on the way (eval_metrics, else the first metric)."""
        return self.eval_metrics or self.metrics[:1]

    @field_validator("models")
    @classmethod
    def _models_resolve(cls, v: list[ModelEntry]) -> list[ModelEntry]:
        labels = [m.name for m in v]
        if len(set(labels)) != len(labels):
            raise ValueError(f"model names must be unique, got {labels}")
        return v

    @model_validator(mode="after")
    def _entry_datasets_in_suite(self) -> Suite:
        for m in self.models:
            other = [d for d in m.datasets or () if d not in self.datasets]
            if other:
                raise ValueError(
                    f"models[{m.name}].datasets: {other[0]!r} is not one of the suite's "
                    f"datasets ({', '.join(self.datasets)}); add it there or drop it here"
                )
        return self


@dataclass(frozen=True)
class Job:
    suite: Suite
    dataset: str
    entry: ModelEntry
    seed: int

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.entry.name}/seed{self.seed}"


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite file; relative paths in it resolve against its folder."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"suite file {path} not found; see suites/ for examples")
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a suite file is a YAML mapping (name, datasets, models, ...)")
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as e:
        # A misspelt key also shows up as a missing field: name the unknown key first.
        errors = sorted(e.errors(), key=lambda err: err["type"] != "extra_forbidden")
        raise UserError(f"{path}: " + "; ".join(_describe(err) for err in errors[:3])) from None
    return _resolve_paths(suite, path.parent)


def _read_yaml(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_SUITE_BYTES:
            raise UserError(
                f"{path}: {size} bytes; a suite file is at most {MAX_SUITE_BYTES // 1024} KiB"
            )
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise UserError(f"{path}: cannot be read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        msg = f"{path}: not a UTF-8 text file (byte {e.start}); a suite file is YAML text"
        raise UserError(msg) from None
    try:
        return load_yaml(text)
    except YamlTooLarge as e:
        raise UserError(f"{path}: refused: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or getattr(e, "reason", None) or e
        raise UserError(f"{path}: not valid YAML{where}: {problem}") from None


def check_option(key: str, value: Any) -> None:
    """Model options are plain values: a finite number, string, boolean or null, a list of
    those, or a mapping of names to those or to lists of those; anything else is a
    ValueError. NaN slips through range checks (`guidance < 0` is False for it) and gave
    all-black samples that were scored as the model's."""
    problem = _option_problem(value, nested=False)
    if problem:
        raise ValueError(
            f"option {key!r}: {problem}; an option is a finite number, "
            "string, boolean or null, a list of those, or a mapping of names to those"
        )


def _option_problem(value: Any, nested: bool) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if value is None or isinstance(value, bool | int | float):
        return None
    if isinstance(value, str):
        return f"text longer than {MAX_OPTION_TEXT}" if len(value) > MAX_OPTION_TEXT else None
    if isinstance(value, list):
        if len(value) > MAX_OPTION_ITEMS:
            return f"a list of more than {MAX_OPTION_ITEMS} items"
        if any(isinstance(item, list | dict) for item in value):
            return "a list that holds lists or mappings"
        return next(filter(None, (_option_problem(item, True) for item in value)), None)
    if isinstance(value, dict) and not nested:
        if len(value) > MAX_OPTIONS:
            return f"a mapping of more than {MAX_OPTIONS} names"
        if not all(isinstance(k, str) for k in value):
            return "a mapping whose names are not all text"
        if any(isinstance(item, dict) for item in value.values()):
            return "mappings nested in a mapping"
        return next(filter(None, (_option_problem(v, True) for v in value.values())), None)
    if isinstance(value, dict):
        return "a mapping nested too deeply"
    return f"a {type(value).__name__}"


def _describe(err: dict) -> str:
    msg = re.sub(r"^(Value error|Assertion failed), ", "", err["msg"])
    if err["type"] == "extra_forbidden":
        msg = f"unknown key; allowed keys: {', '.join(_allowed_keys(err['loc']))}"
    elif err["type"] == "missing":
        msg = "required field is missing"
    return f"{_format_loc(err['loc'])}: {msg}"


def _allowed_keys(loc: tuple) -> list[str]:
    schema = ModelEntry if "models" in loc else BudgetSpec if "budget" in loc else Suite
    return list(schema.model_fields)


def _resolve_paths(suite: Suite, base: Path) -> Suite:
    models = []
    for m in suite.models:
        update = {}
        prefixed = model_prefix(m.ref) if m.model else None
        if prefixed is not None:  # a file or folder a model family reads (torchscript:G.pt)
            p = _against(base, Path(prefixed[1]))
            if not p.exists():
                raise UserError(f"models[{m.name}].model: {p} not found")
            update["model"] = f"{prefixed[0]}:{p}"
            check_model_files(update["model"])
        for field in ("checkpoint", "samples"):
            p = getattr(m, field)
            if p is not None:
                p = _against(base, p)
                if not p.exists():
                    raise UserError(f"models[{m.name}].{field}: {p} not found")
                update[field] = p
        if "samples" in update:
            from bench.samples import count_samples  # imports torch: only for samples files

            count = count_samples(update["samples"])
            if count < suite.n_samples:
                raise UserError(
                    f"models[{m.name}].samples: {update['samples']} holds {count} samples; "
                    f"the suite asks for n_samples={suite.n_samples}"
                )
        models.append(m.model_copy(update=update))
    weights = {}
    for name, p in suite.weights.items():
        p = _against(base, p)
        if not p.is_file():
            raise UserError(f"weights.{name}: {p} not found")
        weights[name] = p
    datasets = [_dataset_against(base, d) for d in suite.datasets]
    models = [
        m
        if m.datasets is None
        else m.model_copy(update={"datasets": [_dataset_against(base, d) for d in m.datasets]})
        for m in models
    ]
    return suite.model_copy(update={"models": models, "datasets": datasets, "weights": weights})


def _dataset_against(base: Path, name: str) -> str:
    """folder:PATH with PATH resolved against the suite file's folder."""
    if not name.startswith("folder:"):
        return name
    return f"folder:{_against(base, Path(name.split(':', 1)[1]))}"


def _against(base: Path, p: Path) -> Path:
    p = p.expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def expand_jobs(suite: Suite) -> list[Job]:
    return [
        Job(suite, dataset, entry, seed)
        for dataset in suite.datasets
        for entry in suite.models
        if entry.datasets is None or dataset in entry.datasets
        for seed in suite.seeds
    ]
