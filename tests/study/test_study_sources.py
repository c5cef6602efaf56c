"""Which of a suite's models a study shows: the learned ones and, of the references, one
sanity check (the copier) unless asked otherwise."""

import pytest

from bench.errors import UserError
from bench.record import JobRecord, open_output_store
from bench.study.sources import study_runs


def output_with(tmp_path, entries: list[tuple[str, str, bool]]):
    """An output folder whose store holds a finished job per (label, model ref, reference)."""
    client = open_output_store(tmp_path)
    exp = client.experiment("s", tmp_path / "mlruns" / "artifacts")
    for label, ref, reference in entries:
        record = JobRecord(
            job_key=label, fit_key=f"fit-{label}", samples_key=f"samples-{label}", suite="s",
            suite_version="1", dataset="digits", dataset_hash="h", model=label, model_ref=ref,
            source="trained", seed=0, reference=reference,
        )  # fmt: skip
        client.start_job(exp, record, None)
        client.finish_job(record)
    return tmp_path


SUITE = [
    ("vae", "vae", False),
    ("noise", "pixel-gaussian", True),
    ("ddpm", "ddpm", False),
    ("copy", "copier", True),
]


def labels(out, models=None, **kw) -> list[str]:
    return [r.label for r in study_runs(out, models, **kw)]


def test_by_default_a_study_shows_learned_models_and_the_copier_only(tmp_path):
    """Before, every reference was in the study: they took 40% of the trials."""
    out = output_with(tmp_path, SUITE)
    assert labels(out) == ["vae", "ddpm", "copy"]
    assert labels(out, references="all") == ["vae", "noise", "ddpm", "copy"]
    assert labels(out, references="none") == ["vae", "ddpm"]
    assert labels(out, ["noise", "vae"], references="none") == ["noise", "vae"]  # as asked


def test_without_a_copier_the_first_reference_is_the_sanity_check(tmp_path):
    out = output_with(tmp_path, [e for e in SUITE if e[1] != "copier"])
    assert labels(out) == ["vae", "noise", "ddpm"]


def test_an_output_of_references_only_shown_without_them_is_refused(tmp_path):
    out = output_with(tmp_path, [e for e in SUITE if e[2]])
    assert labels(out) == ["copy"]
    with pytest.raises(UserError, match="holds only references on digits; pass --references"):
        labels(out, references="none")
