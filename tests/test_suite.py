import textwrap

import numpy as np
import pytest

from bench.errors import UserError
from bench.suite import expand_jobs, load_suite

GOOD = """
name: tiny
datasets: [digits]
seeds: [0, 1]
n_samples: 100
budget: {steps: 3}
metrics: [fd_pixels]
models:
  - name: copier
  - name: noisy
    model: pixel-gaussian
"""


def write(tmp_path, text: str):
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_suite_expands_to_one_job_per_dataset_model_seed(tmp_path):
    suite = load_suite(write(tmp_path, GOOD))
    jobs = expand_jobs(suite)
    assert [j.label for j in jobs] == [
        "digits/copier/seed0",
        "digits/copier/seed1",
        "digits/noisy/seed0",
        "digits/noisy/seed1",
    ]
    assert suite.models[1].ref == "pixel-gaussian"


def test_shipped_suites_validate():
    from conftest import ROOT

    for path in sorted((ROOT / "suites").glob("*.yaml")):
        assert load_suite(path).name


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            ("budget: {steps: 3}", "budget: {steps: 3, epochs: 2}"),
            r"budget\.epochs: unknown key; allowed keys: steps, seconds",
        ),
        (("n_samples: 100", "n_samples: lots"), r"n_samples: .*integer"),
        (("- name: copier", "- name: nope"), r"models\[0\].*unknown model 'nope'.*copier"),
        (
            ("metrics: [fd_pixels]", "metrics: [fid_bogus]"),
            r"metrics: unknown metric 'fid_bogus'; choose one of: .*fd_pixels",
        ),
        (
            ("datasets: [digits]", "datasets: [imagenet]"),
            r"datasets: unknown dataset 'imagenet'; choose one of: .*digits",
        ),
        (("name: tiny", "nmae: tiny"), r"nmae: unknown key"),
        (("    model: pixel-gaussian", "    model: nomodule_xyz:Thing"), r"cannot import"),
        (("budget: {steps: 3}", "budget: {steps: -1}"), r"budget\.steps: .*greater than"),
        (
            ("metrics: [fd_pixels]", "metrics: [fd_pixels]\nrank_by: [ct_pixels]"),
            r"rank_by: 'ct_pixels' cannot rank models: .*lower or higher",
        ),
        (
            ("metrics: [fd_pixels]", "metrics: [fd_pixels]\nrank_by: throughput_img_s_b1_cpu"),
            r"rank_by: 'throughput_img_s_b1_cpu' cannot rank models",
        ),
    ],
)
def test_mistakes_name_file_field_and_choices(tmp_path, edit, expected):
    old, new = edit
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(UserError, match=expected) as info:
        load_suite(path)
    msg = str(info.value)
    assert msg.startswith(str(path)) and "\n" not in msg


def test_malformed_yaml(tmp_path):
    with pytest.raises(UserError, match="not valid YAML at line"):
        load_suite(write(tmp_path, "name: [unclosed\n"))


def test_missing_suite_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_suite(tmp_path / "nope.yaml")


def test_relative_paths_resolve_against_the_suite_file(tmp_path):
    np.savez(tmp_path / "s.npz", np.zeros((100, 1, 8, 8), np.uint8))
    text = GOOD + "  - name: external\n    samples: s.npz\n"
    suite = load_suite(write(tmp_path, text))
    assert suite.models[2].samples == (tmp_path / "s.npz").resolve()
    with pytest.raises(UserError, match="missing.npz not found"):
        load_suite(write(tmp_path, text.replace("s.npz", "missing.npz")))


def test_rank_by_takes_one_metric_or_a_list():
    one = load_suite_text(GOOD + "rank_by: modes_hq\n")
    assert one.rank_by == ["modes_hq"]
    two = load_suite_text(GOOD + "rank_by: [modes_captured, modes_hq]\n")
    assert two.rank_by == ["modes_captured", "modes_hq"]
    assert load_suite_text(GOOD).rank_by == []


def load_suite_text(text: str):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        return load_suite(write(Path(tmp), text))
