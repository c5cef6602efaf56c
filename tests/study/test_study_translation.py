"""A human study of translations (#31): the fakes are each model's translations, the reals
the target domain's test images; with --show-source (paired tasks) every picture is a
source beside an image, a real one beside its own source; translations carry their
sources' classes for --show-class. The study's protections are those of any study."""

import json
import textwrap

import numpy as np
import pytest
from conftest import run_cli
from fastapi.testclient import TestClient

from bench.data import load_dataset
from bench.study import store
from bench.study.app import create_app
from bench.study.config import StudyConfig, pair_width
from bench.study.images import encode_pair_png, encode_png
from bench.study.plan import REAL
from bench.study.serve import StudyRequest, open_study
from bench.translation import source

ORDER = np.random.default_rng(0).permutation(60)[::-1].copy()


@pytest.fixture(scope="module")
def tr_out(tmp_path_factory):
    """A translation suite's output: references on both tasks and, on edges2mnist, a
    samples file of sources shown as translations (identity's) in a shuffled order, with
    their source_indices."""
    from bench.job import RunOptions
    from bench.runner import Runner
    from bench.suite import load_suite

    tmp = tmp_path_factory.mktemp("study-translation")
    edges = load_dataset("edges2mnist")
    np.savez(tmp / "shuf.npz", images=source(edges).test.x[ORDER].numpy(), source_indices=ORDER)
    (tmp / "s.yaml").write_text(
        textwrap.dedent("""\
        name: tr-studied
        datasets: [edges2mnist, digits2mnist]
        n_samples: 60
        budget: {steps: 1}
        metrics: [label_kept]
        models:
          - name: identity
          - name: target-sampler
          - name: oracle
            datasets: [edges2mnist]
          - name: shuf
            samples: shuf.npz
            datasets: [edges2mnist]
        """)
    )
    results = Runner(load_suite(tmp / "s.yaml"), RunOptions(tmp / "out")).run()
    assert {r.status for r in results} == {"FINISHED"}
    return tmp / "out"


def reopened(out, name: str, dataset: str, **cfg) -> tuple:
    """The study as `genbench study` made it (reopened in this process) and its pool."""
    args = ["study", "--out", str(out), "--dataset", dataset, "--name", name, "--images", "20",
            "--trials", "24", "--practice", "2", "--references", "all", "--score"]  # fmt: skip
    flags = {"show_source": "--show-source", "show_class": "--show-class"}
    res = run_cli(*args, *[flags[k] for k, on in cfg.items() if on])
    assert res.returncode == 0, res.stderr
    config = StudyConfig(trials=24, practice=2, images=20, **cfg)
    study, _ = open_study(StudyRequest(out, name, config, 1, [], dataset, None, "all"))
    return study, store.read_pool(study.db)


def test_translations_are_shown_against_the_target_test_images(tr_out):
    edges = load_dataset("edges2mnist")
    src, target = source(edges).test.x, edges.test.x
    study, pool = reopened(tr_out, "plain", "edges2mnist")
    want = {
        REAL: lambda i: target[i],
        "identity": lambda i: src[i],
        "oracle": lambda i: target[i],
        "target-sampler": None,  # random training targets
        "shuf": lambda i: src[ORDER[i]],  # row i of the file translates source ORDER[i]
    }
    assert {p.source for p in pool} == set(want)
    for p in pool:
        if want[p.source] is not None:
            assert study.images[p.id] == encode_png(want[p.source](p.index), 256), p.source
    assert len({len(png) for png in study.images.values()}) == 1


def test_show_source_puts_each_image_beside_its_source(tr_out):
    """A real picture is test pair i; a translation sits beside the source it was made
    from; the oracle's pictures are the real ones (the sanity check: 0.5 error)."""
    edges = load_dataset("edges2mnist")
    src, target = source(edges).test.x, edges.test.x
    study, pool = reopened(tr_out, "beside", "edges2mnist", show_source=True)
    want = {
        REAL: lambda i: (src[i], target[i]),
        "oracle": lambda i: (src[i], target[i]),
        "identity": lambda i: (src[i], src[i]),
        "shuf": lambda i: (src[ORDER[i]], src[ORDER[i]]),
    }
    for p in pool:
        if p.source in want:
            assert study.images[p.id] == encode_pair_png(*want[p.source](p.index), 256)
    assert len({len(png) for png in study.images.values()}) == 1
    token = store.rater_tokens(study.db)[0]
    page = TestClient(create_app(study)).get(f"/s/{token}").text
    assert f'width="{pair_width(256)}" height="256"' in page and 'id="beside"' in page


def test_by_default_the_sanity_check_is_the_target_sampler_or_beside_sources_the_oracle(tr_out):
    for name, extra in (("one", []), ("one-beside", ["--show-source"])):
        args = ["--dataset", "edges2mnist", "--name", name, "--trials", "20", "--practice", "0"]
        res = run_cli("study", "--out", str(tr_out), *args, "--images", "20", *extra, "--score")
        assert res.returncode == 0, res.stderr
        _, models, _ = store.read_meta(tr_out / "study" / f"{name}.sqlite")
        assert sorted(models) == sorted(["shuf", "oracle" if extra else "target-sampler"])


def test_a_translation_carries_its_sources_class(tr_out):
    digits = load_dataset("digits2mnist")
    study, pool = reopened(tr_out, "classes", "digits2mnist", show_class=True)
    for p in pool:
        labels = digits.test.y if p.source == REAL else source(digits).test.y
        if p.source != "target-sampler":
            assert study.classes[p.id] == int(labels[p.index])


def test_show_source_is_refused_on_an_unpaired_task_and_writes_nothing(tr_out):
    res = run_cli("study", "--out", str(tr_out), "--dataset", "digits2mnist", "--name", "no",
                  "--show-source", "--score")  # fmt: skip
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "--show-source shows each image beside its source" in res.stderr
    assert not (tr_out / "study" / "no.sqlite").exists()


def test_a_study_saved_before_show_source_reopens_without_it():
    saved = json.loads(StudyConfig().to_json())
    del saved["show_source"]
    assert StudyConfig.from_json(json.dumps(saved)) == StudyConfig()
    assert StudyConfig(display_px=64).stage_width == 64
    assert StudyConfig(display_px=64, show_source=True).stage_width == 136


def test_a_samples_file_of_translations_is_shown_beside_its_source_indices(tr_out, tmp_path):
    edges = load_dataset("edges2mnist")
    src = source(edges).test.x
    path = tr_out.parent / "shuf.npz"
    res = run_cli("study", "--out", str(tmp_path), "--samples", f"shuf={path}", "--dataset",
                  "edges2mnist", "--images", "20", "--trials", "20", "--practice", "0",
                  "--show-source", "--score")  # fmt: skip
    assert res.returncode == 0, res.stderr
    config = StudyConfig(trials=20, practice=0, images=20, show_source=True)
    request = StudyRequest(tmp_path, "default", config, 1, [f"shuf={path}"], "edges2mnist", None)
    study, _ = open_study(request)
    for p in store.read_pool(study.db):
        if p.source == "shuf":
            assert study.images[p.id] == encode_pair_png(
                src[ORDER[p.index]], src[ORDER[p.index]], 256
            )
