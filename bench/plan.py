"""The plan of a run, made before torch loads: every check that needs no torch, once, and
what the Runner needs of them. The tracking URI and the output folder can be used, Inception
Score has the classifier layer it needs, every dataset loads, every samples file fits its
dataset (labels included), every metric can run on each dataset with the suite's n_samples,
every baseline takes its options and fits the dataset's classes, conditional metrics score
only class-conditional entries, and the weights files of the feature spaces the metrics use
(DINOv2, CLIP) are there. Baselines and metrics are read from their declarations
(bench.registry), not imported.

`genbench run` makes the plan before torch loads (importing it takes two seconds on some
CPUs), so bad input is refused in well under a second unless only a model's own code can
tell (a plug-in's module imports torch). The Runner takes the plan; Runner.preflight then
makes the checks that need torch: it builds the models the plan could not decide on."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.data import dataset_arrays
from bench.errors import UserError
from bench.features.inception_hub import require_classifier_layer
from bench.features.weights_files import extractor_weights_file, find_weights
from bench.metrics import fits_data, metric_extractors, parse_metric
from bench.models import model_arguments, model_signature
from bench.record import check_tracking_uri
from bench.samples import check_samples_file, sample_labels, source_indices
from bench.suite import Job, ModelEntry, Suite, expand_jobs
from bench.translation import is_translation
from bench.translation.translate import check_task_size


@dataclass(frozen=True)
class PlannedEntry:
    """One suite entry on one dataset (its seeds share it)."""

    job: Job  # its first job
    label_metrics: tuple[str, ...]  # the suite's metrics that score asked-for classes here


@dataclass(frozen=True)
class Plan:
    suite: Suite
    jobs: list[Job]
    entries: list[PlannedEntry]  # model entries (samples files are fully checked here)
    # whether `labels:` found a class-conditional entry; None: only a plug-in's code can tell
    conditional: bool | None


def plan_suite(
    suite: Suite, out_dir: Path, data_root: Path | None = None, tracking_uri: str | None = None
) -> Plan:
    """The checks above, each made once; a UserError at the first that fails."""
    if tracking_uri is not None:
        check_tracking_uri(tracking_uri)
    check_writable(out_dir)
    if "inception_score" in suite.metrics:
        require_classifier_layer()
    needs = {m: parse_metric(m)[0].needs for m in suite.metrics}
    jobs = expand_jobs(suite)
    entries: dict[tuple[str, str], PlannedEntry] = {}
    checked = set()
    conditional = False  # an entry asks for classes, or a samples file holds them
    undecided = False  # an entry only its own code can tell (a plug-in's)
    for job in jobs:
        entry = job.entry
        if (job.dataset, entry.name) in checked:  # seeds share datasets and options
            continue
        checked.add((job.dataset, entry.name))
        data = dataset_arrays(job.dataset, data_root)
        if is_translation(data):
            check_task_size(data, suite.n_samples)
        label_metrics = tuple(
            m
            for m in suite.metrics
            if fits_data(m, needs[m], data, suite.n_samples) and "sample_labels" in needs[m]
        )
        if entry.samples is not None:
            check_samples_file(entry.samples, data, suite.n_samples)
            labelled = sample_labels(entry.samples, data, suite.n_samples) is not None
            source_indices(entry.samples, data, suite.n_samples)
            conditional |= labelled
            if label_metrics and not labelled:
                raise UserError(samples_without_labels(label_metrics[0], entry))
            continue
        entries[(job.dataset, entry.name)] = PlannedEntry(job, label_metrics)
        sig = model_signature(entry.ref)
        if sig is None:
            undecided = True
            continue
        model_arguments(sig, data, dict(entry.options))
        takes_classes = "num_classes" in sig.params and bool(data.num_classes)
        conditional |= takes_classes
        if label_metrics and not takes_classes:
            raise UserError(unconditional_entry(label_metrics[0], entry))
    if suite.labels is not None and not conditional and not undecided:
        raise UserError(labels_without_conditional(suite))
    check_weights_files(suite, needs, data_root)
    return Plan(suite, jobs, list(entries.values()), conditional or (None if undecided else False))


def check_weights_files(
    suite: Suite, needs: dict[str, frozenset[str]], data_root: Path | None
) -> None:
    """Every weights file that the metrics load on the suite's image datasets (DINOv2, CLIP)
    is there: given in `weights:` (load_suite found it) or in the place its extractor looks.
    Those networks take images only: point datasets need none."""
    used = set()
    for name in suite.datasets:
        data = dataset_arrays(name, data_root)
        for m in suite.metrics:
            if data.kind == "images" and fits_data(m, needs[m], data, suite.n_samples):
                used |= set(metric_extractors(m, suite.features))
    for extractor in sorted(used - set(suite.weights)):
        file = extractor_weights_file(extractor)
        if file is not None:
            how = f"give its path in the suite: weights: {{{extractor}: PATH}}"
            find_weights(None, file.candidates, file.what, file.url, how)


def samples_without_labels(metric: str, entry: ModelEntry) -> str:
    return (
        f"metric {metric!r} needs the class each sample was asked for; models[{entry.name}]"
        f".samples {entry.samples} holds no labels: save them in the .npz "
        "(np.savez(F, images=x, labels=y)) or drop the metric"
    )


def unconditional_entry(metric: str, entry: ModelEntry) -> str:
    return (
        f"metric {metric!r} needs class-conditional samples; models[{entry.name}] "
        f"({entry.ref}) is unconditional (no num_classes): remove the entry or the metric"
    )


def labels_without_conditional(suite: Suite) -> str:
    return (
        f"labels: {suite.labels} applies to class-conditional models and no entry of this "
        "suite is one; remove it"
    )


def check_writable(out: Path) -> None:
    """Probe the output folder, or the nearest folder above it that exists, leaving nothing
    behind (a unique probe name: workers starting together must not race on one file)."""
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        with tempfile.TemporaryDirectory(dir=probe, prefix=".write-test-"):
            pass
    except OSError as e:
        raise UserError(not_writable(out, e)) from None


def not_writable(out: Path, e: OSError) -> str:
    return f"output folder {out} is not writable ({e.strerror}); pass --out DIR"
