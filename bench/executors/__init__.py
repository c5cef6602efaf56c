"""Where a suite's jobs run. Executors take picklable job specs (bench.worker.JobSpec),
never the runner, and every one runs the same function (bench.worker.run_job) against the
same MLflow store; the cache and per-job locks keep each job exactly once whichever
executor ran it.

`local` runs the jobs on this machine, up to `jobs` at once in worker processes
(bench/executors/local.py); `ray` makes each job a Ray task (bench/executors/ray.py) and
`slurm` a SLURM job through submitit (bench/executors/slurm.py). Ray and submitit are
optional (`pip install 'genbench[scale]'`) and imported only when asked for.

Each executor is a registry entry: a factory registered with its declared options
(`genbench run --executor NAME --executor-option KEY=VALUE`, `genbench list executors`).
The built-ins' factories are here and import their executor's module only once its options
have passed: choosing and checking an executor imports no torch, so a bad option is
refused fast.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bench.errors import UserError, first_line
from bench.plugins import load_plugins
from bench.registry import LAZY, Registry, declarations, package_modules, summary, target_of

if TYPE_CHECKING:
    from bench.job import JobResult
    from bench.worker import JobSpec

OPTION_TYPES: dict[str, Callable[[str], Any]] = {"str": str, "int": int, "float": float}


class Executor(Protocol):
    def run(self, specs: list[JobSpec]) -> list[JobResult]: ...


@dataclass(frozen=True)
class ExecutorOption:
    name: str
    type: str  # of OPTION_TYPES
    default: Any
    help: str


@dataclass(frozen=True)
class ExecutorSpec:
    """What an executor declares; its factory, (**options) -> Executor, loads on use."""

    name: str
    options: tuple[ExecutorOption, ...]
    summary: str = ""

    @property
    def make(self) -> Callable[..., Executor]:
        return EXECUTORS.load(self.name).obj


def executor_spec(
    name: str, *, options: dict[str, tuple[str, Any, str]], doc: str | None = None
) -> ExecutorSpec:
    """The spec a registration's literal arguments declare: options maps each keyword of
    the factory to (type, default, help)."""
    if options is LAZY:
        raise ValueError(f"executor {name!r}: declare its options as a literal")
    declared = []
    for key, (kind, default, text) in options.items():
        if kind not in OPTION_TYPES:
            raise ValueError(f"executor {name!r}: option {key!r} has type {kind!r}")
        declared.append(ExecutorOption(key, kind, default, text))
    return ExecutorSpec(name, tuple(declared), summary(doc))


def _declared() -> Iterator[tuple[str, str, ExecutorSpec]]:
    own = package_modules(Path(__file__).parent, __name__)
    for d in declarations(own, ("register_executor",)):
        yield d.args[0], d.target, executor_spec(*d.args, **d.kwargs, doc=d.doc)


EXECUTORS: Registry[ExecutorSpec] = Registry("executor", _declared)


def register_executor(
    name: str, *, options: dict[str, tuple[str, Any, str]]
) -> Callable[[Callable[..., Executor]], Callable[..., Executor]]:
    """Register an executor: a factory taking the declared options as keywords (each
    given with `genbench run --executor NAME --executor-option KEY=VALUE`). Its
    docstring's first paragraph is its summary in `genbench list executors`."""

    def wrap(factory: Callable[..., Executor]) -> Callable[..., Executor]:
        spec = executor_spec(name, options=options, doc=factory.__doc__)
        EXECUTORS.add(name, target_of(factory), spec, factory)
        return factory

    return wrap


def executor_names() -> list[str]:
    load_plugins()
    return EXECUTORS.names()


def executor_spec_of(name: str) -> ExecutorSpec:
    if name not in executor_names():
        raise UserError(f"unknown executor {name!r}; choose one of: {', '.join(executor_names())}")
    return EXECUTORS.meta(name)


def parse_executor_options(name: str, pairs: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` pairs -> the executor's options, each converted to its declared type."""
    out = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        where = f"--executor-option {pair!r}"
        out.update(
            _typed(name, key.strip() if eq else "", value, where, "give KEY=VALUE with a KEY")
        )
    return out


def suite_executor_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """A suite file's `executor: {name, options}` options, checked and converted as
    --executor-option's are."""
    out = {}
    for key, value in options.items():
        out.update(_typed(name, key, str(value), f"options.{key}", "name an option"))
    return out


def _typed(name: str, key: str, value: str, where: str, ask: str) -> dict[str, Any]:
    """{key: value as the type executor `name` declares for it}, or a UserError that names
    `where` the option was given and asks for an option of the executor's."""
    declared = {o.name: o for o in executor_spec_of(name).options}
    if key not in declared:
        names = ", ".join(declared) or "none"
        raise UserError(f"{where}: {ask} of executor {name!r} ({names})")
    try:
        return {key: OPTION_TYPES[declared[key].type](value.strip())}
    except ValueError:
        raise UserError(f"{where}: {key} takes {declared[key].type} values") from None


def executor_options(
    name: str,
    flags: dict[str, Any],
    pairs: list[str] | None,
    suite_options: dict[str, Any] | None = None,
) -> dict:
    """The options for executor `name`: the suite file's (`executor:` options, when it names
    this executor), then `genbench run`'s flags that were given (None: not given; keyed by
    the option each sets) that it declares, then its --executor-option KEY=VALUE pairs."""
    declared = {o.name for o in executor_spec_of(name).options}
    given = {key: value for key, value in flags.items() if key in declared and value is not None}
    return {**(suite_options or {}), **given, **parse_executor_options(name, pairs or [])}


def describe_executors() -> list[str]:
    """`genbench list executors`: each executor, its summary and its options."""
    lines = []
    for name in executor_names():
        spec = EXECUTORS.meta(name)
        lines.append(f"{name}: {spec.summary}")
        for o in spec.options:
            default = (
                "" if o.default is None or "[default" in o.help else f" [default: {o.default}]"
            )
            lines.append(f"    {o.name}={o.type.upper()}  {o.help}{default}")
    return lines


def make_executor(name: str, **options: Any) -> Executor:
    """The executor `name` built with its declared options (a UserError for others)."""
    spec = executor_spec_of(name)
    unknown = set(options) - {o.name for o in spec.options}
    if unknown:
        raise UserError(f"executor {name!r} takes no option {sorted(unknown)[0]!r}")
    return spec.make(**options)


@register_executor(
    "local",
    options={"jobs": ("int", None, "jobs at once, in worker processes [default: physical cores]")},
)
def local_executor(jobs: int | None = None) -> Executor:
    """Jobs on this machine, up to `jobs` at once in worker processes."""
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs must be 1 or more, got {jobs}")
    from bench.executors.local import LocalExecutor
    from bench.threads import available_cores

    return LocalExecutor(jobs or available_cores())


@register_executor(
    "ray",
    options={
        "address": ("str", None, "join this Ray cluster (e.g. auto) [default: start one]"),
        "cpus_per_job": ("float", 1, "CPUs per job"),
        "gpus_per_job": ("float", 0, "GPUs per job"),
        "max_retries": ("int", 1, "reruns of a job whose worker died"),
        "num_cpus": ("int", None, "CPUs of a local Ray instance [default: all]"),
    },
)
def ray_executor(
    address: str | None = None,
    cpus_per_job: float = 1,
    gpus_per_job: float = 0,
    max_retries: int = 1,
    num_cpus: int | None = None,
) -> Executor:
    """Each job a Ray task, on a local Ray instance or a cluster (pip install ray)."""
    check_resources(cpus_per_job, gpus_per_job, max_retries)
    from bench.executors.ray import RayExecutor

    return RayExecutor(address, cpus_per_job, gpus_per_job, max_retries, num_cpus)


@register_executor(
    "slurm",
    options={
        "partition": ("str", None, "SLURM partition"),
        "time": ("int", 60, "SLURM time limit per job, minutes"),
        "mem_gb": ("float", None, "SLURM memory per job, GB"),
        "cpus_per_job": ("float", 1, "CPUs per job (whole)"),
        "gpus_per_job": ("float", 0, "GPUs per job (whole)"),
        "max_retries": ("int", 1, "reruns of a job whose worker died"),
        "cluster": (
            "str",
            None,
            "submitit's cluster: slurm, or local/debug to try the path without SLURM "
            "[default: GENBENCH_SUBMITIT_CLUSTER, else slurm]",
        ),
    },
)
def slurm_executor(
    partition: str | None = None,
    time: int = 60,
    mem_gb: float | None = None,
    cpus_per_job: float = 1,
    gpus_per_job: float = 0,
    max_retries: int = 1,
    cluster: str | None = None,
) -> Executor:
    """Each job a SLURM job through submitit, requeued on preemption (pip install submitit)."""
    check_resources(cpus_per_job, gpus_per_job, max_retries)
    if time < 1:
        raise UserError(f"--slurm-time is in minutes and must be at least 1, got {time}")
    if mem_gb is not None and mem_gb <= 0:
        raise UserError(f"--slurm-mem-gb must be positive, got {mem_gb}")
    if gpus_per_job != int(gpus_per_job) or cpus_per_job != int(cpus_per_job):
        raise UserError("--executor slurm takes whole numbers for --cpus-per-job/--gpus-per-job")
    from bench.executors.slurm import SlurmExecutor

    return SlurmExecutor(
        partition=partition,
        time_min=time,
        cpus_per_job=int(cpus_per_job),
        gpus_per_job=int(gpus_per_job),
        mem_gb=mem_gb,
        max_retries=max_retries,
        cluster=cluster,
    )


def check_resources(cpus_per_job: float, gpus_per_job: float, max_retries: int) -> None:
    """The resource options that ray and slurm share."""
    if cpus_per_job <= 0:
        raise UserError(f"--cpus-per-job must be positive, got {cpus_per_job}")
    if gpus_per_job < 0:
        raise UserError(f"--gpus-per-job must be 0 or more, got {gpus_per_job}")
    if max_retries < 0:
        raise UserError(f"--max-retries must be 0 or more, got {max_retries}")


# -- shared by the executors that run jobs in other processes -----------------------------


def portable(specs: list[JobSpec]) -> list[JobSpec]:
    """Specs with absolute paths, so that a worker with another working folder (a Ray
    worker, a SLURM task) writes to the same output folder."""
    opts = specs[0].opts if specs else None
    if opts is None:
        return specs
    opts = dataclasses.replace(
        opts,
        out_dir=opts.out_dir.resolve(),
        data_root=opts.data_root.resolve() if opts.data_root is not None else None,
    )
    return [dataclasses.replace(s, opts=opts) for s in specs]


def progress_line(done: int, total: int, result: JobResult) -> str:
    what = result.status + (f" in {result.seconds:.1f} s" if result.seconds else "")
    if result.error:
        what += f": {result.error}"
    return f"[{done}/{total}] {result.job.label}: {what}"


def one_line(e: BaseException, limit: int = 300) -> str:
    return f"{type(e).__name__}: {first_line(e)}"[:limit]
