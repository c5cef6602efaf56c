"""The checks of a run that need no model and no torch: the tracking URI and the output
folder can be used, every dataset loads, every samples file fits its dataset (labels
included), Inception Score has the classifier layer it needs. `genbench run` makes them
before torch loads (importing it takes two seconds on some CPUs), so most bad input is
refused in well under a second; building the Runner makes them again (datasets are cached,
an .npz is checked from its header), then Runner.preflight checks the models."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.data import dataset_arrays
from bench.errors import UserError
from bench.features.inception_hub import require_classifier_layer
from bench.record import check_tracking_uri
from bench.samples import check_samples_file, sample_labels
from bench.suite import Suite, expand_jobs


def check_inputs(
    suite: Suite, out_dir: Path, data_root: Path | None = None, tracking_uri: str | None = None
) -> None:
    if tracking_uri is not None:
        check_tracking_uri(tracking_uri)
    check_writable(out_dir)
    if "inception_score" in suite.metrics:
        require_classifier_layer()
    checked = set()
    for job in expand_jobs(suite):
        entry = job.entry
        if (job.dataset, entry.name) in checked:  # seeds share datasets and samples files
            continue
        checked.add((job.dataset, entry.name))
        data = dataset_arrays(job.dataset, data_root)
        if entry.samples is not None:
            check_samples_file(entry.samples, data, suite.n_samples)
            sample_labels(entry.samples, data, suite.n_samples)


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
