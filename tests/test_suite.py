import re
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
        (
            ("    model: pixel-gaussian", "    model: nomodule_xyz:Thing"),
            r"'nomodule_xyz' cannot be imp",
        ),
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


def test_folder_datasets_resolve_against_the_suite_file(tmp_path):
    suite_dir = tmp_path / "suites"
    suite_dir.mkdir()
    text = GOOD.replace("[digits]", f"['folder:imgs', 'folder:{tmp_path}/abs', digits]")
    suite = load_suite(write(suite_dir, text))
    assert suite.datasets == [
        f"folder:{(suite_dir / 'imgs').resolve()}",
        f"folder:{tmp_path}/abs",
        "digits",
    ]


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "../up", "-x"])
def test_suite_name_that_is_not_a_plain_folder_name_is_refused(tmp_path, name):
    with pytest.raises(UserError, match="names the output folder"):
        load_suite(write(tmp_path, GOOD.replace("name: tiny", f"name: '{name}'")))


def test_suite_names_in_use_stay_valid(tmp_path):
    for name in ["digits", "fashion-mnist", "v1.2_run-3"]:
        assert load_suite(write(tmp_path, GOOD.replace("name: tiny", f"name: {name}"))).name == name


@pytest.mark.parametrize(
    "seeds, ok",
    [("[0, 4294967295]", True), ("[4294967296]", False), ("[-1]", False), ("[1.5]", False)],
)
def test_seeds_stay_inside_what_sampling_can_seed(tmp_path, seeds, ok):
    text = GOOD.replace("seeds: [0, 1]", f"seeds: {seeds}")
    if ok:
        suite = load_suite(write(tmp_path, text))
        # the runner seeds sampling with 1_000_003 * seed + 17: it must fit torch's range
        import torch

        torch.Generator().manual_seed(1_000_003 * max(suite.seeds) + 17)
    else:
        with pytest.raises(UserError, match=r"seeds\[0\]"):
            load_suite(write(tmp_path, text))


@pytest.mark.parametrize(
    "edit, field",
    [
        (("n_samples: 100", "n_samples: 200001"), "n_samples"),
        (("n_samples: 100", "n_samples: 1"), "n_samples"),
        (("n_samples: 100", "n_samples: 100\nsample_batch_size: 65537"), "sample_batch_size"),
        (("n_samples: 100", "n_samples: 100\nthroughput_batch_sizes: [1, 100000]"), "throughput"),
        (("{steps: 3}", "{steps: 10000000000}"), r"budget\.steps"),
        (("{steps: 3}", "{steps: 3, seconds: .inf}"), r"budget\.seconds"),
    ],
)
def test_sizes_outside_sane_ranges_are_refused(tmp_path, edit, field):
    with pytest.raises(UserError, match=field):
        load_suite(write(tmp_path, GOOD.replace(*edit)))


def with_options(options: str) -> str:
    return GOOD.replace("model: pixel-gaussian", f"model: pixel-gaussian\n    options: {options}")


def test_plain_options_keep_their_values_and_types(tmp_path):
    options = "{steps: 10, std: 8.0, flag: true, none: null, betas: [0.5, 0.9], s: {k: c, at: [1]}}"
    suite = load_suite(write(tmp_path, with_options(options)))
    got = suite.models[1].options
    assert got == {
        "steps": 10,
        "std": 8.0,
        "flag": True,
        "none": None,
        "betas": [0.5, 0.9],
        "s": {"k": "c", "at": [1]},
    }
    assert [type(got[k]) for k in ("steps", "std", "flag")] == [int, float, bool]


@pytest.mark.parametrize(
    "options, problem",
    [
        ("{a: [[1]]}", "a list that holds lists or mappings"),
        ("{a: {b: {c: 1}}}", "mappings nested in a mapping"),
        ("{a: 2024-01-01}", "a date"),
        ("{a: !!binary aGk=}", "a bytes"),
        ("{a: [" + ", ".join(["1"] * 1001) + "]}", "a list of more than 1000 items"),
        ("{a: " + "x" * 1001 + "}", "text longer than 1000"),
    ],
)
def test_options_that_are_not_small_plain_values_are_refused(tmp_path, options, problem):
    with pytest.raises(UserError, match=re.escape(f"option 'a': {problem}")):
        load_suite(write(tmp_path, with_options(options)))


def test_an_anchor_reused_for_options_is_fine(tmp_path):
    text = GOOD.replace("- name: copier", "- name: copier\n    options: &o {std: 8.0}")
    text = text.replace("model: pixel-gaussian", "model: pixel-gaussian\n    options: *o")
    suite = load_suite(write(tmp_path, text))
    assert suite.models[0].options == suite.models[1].options == {"std": 8.0}


BOMB = "".join(
    [f"a0: &a0 [{', '.join(['x'] * 9)}]\n"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)]
)


@pytest.mark.parametrize(
    "text, problem",
    [
        (BOMB, "more than 100000 values once aliases are expanded"),
        ("a: &a [1, *a]\n", "an alias refers to the collection that contains it"),
        ("a: &a {b: *a}\n", "an alias refers to the collection that contains it"),
        ("a: " + "[" * 60 + "]" * 60 + "\n", "nested deeper than 50 levels"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 50 levels"),
    ],
)
def test_yaml_that_would_expand_or_recurse_is_refused_before_it_is_built(tmp_path, text, problem):
    with pytest.raises(UserError, match=problem):
        load_suite(write(tmp_path, GOOD + text))


def test_suite_file_of_binary_garbage_is_one_line(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(UserError, match=r"not a UTF-8 text file \(byte 128\)"):
        load_suite(path)


def test_suite_file_over_the_size_limit_is_refused_unread(tmp_path):
    path = write(tmp_path, GOOD + "description: " + "x" * (256 * 1024) + "\n")
    with pytest.raises(UserError, match="at most 256 KiB"):
        load_suite(path)


@pytest.mark.parametrize("count", [0, 99])
def test_samples_file_with_fewer_than_n_samples_is_refused(tmp_path, count):
    np.savez(tmp_path / "s.npz", np.zeros((count, 1, 8, 8), np.uint8))
    text = GOOD + "  - name: external\n    samples: s.npz\n"
    with pytest.raises(UserError, match=f"holds {count} samples; the suite asks for n_samples=100"):
        load_suite(write(tmp_path, text))


def test_samples_folder_is_counted_by_its_image_names(tmp_path):
    (tmp_path / "imgs" / "sub").mkdir(parents=True)
    for i in range(99):
        (tmp_path / "imgs" / ("sub" if i % 2 else "") / f"{i}.png").write_bytes(b"")
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    text = GOOD + "  - name: external\n    samples: imgs\n"
    with pytest.raises(UserError, match="holds 99 samples"):
        load_suite(write(tmp_path, text))
    (tmp_path / "imgs" / "last.PNG").write_bytes(b"")
    assert load_suite(write(tmp_path, text)).models[2].samples == (tmp_path / "imgs").resolve()


def test_a_model_entry_runs_on_its_datasets_only_folder_paths_included(tmp_path):
    (tmp_path / "imgs").mkdir()
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\ndatasets: [digits, 'folder:imgs']\nbudget: {steps: 1}\nmetrics: [fd_pixels]\n"
        "models:\n  - name: copier\n    datasets: ['folder:imgs']\n  - name: pixel-gaussian\n"
    )
    jobs = [(j.dataset, j.entry.name) for j in expand_jobs(load_suite(path))]
    folder = f"folder:{(tmp_path / 'imgs').resolve()}"
    assert jobs == [("digits", "pixel-gaussian"), (folder, "copier"), (folder, "pixel-gaussian")]
