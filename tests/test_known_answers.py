"""Known answers for the metrics people misread, and the small-n warnings.

A mode-collapsed model (one mode of ten, or a class-dropper keeping half) draws samples that
are all realistic but cover little: high precision, low recall, low coverage. A noisy model
draws samples spread far past the data: low precision, high recall. Each asymmetric metric
is checked through the registered metric (which set is real, which fake) and with its
arguments swapped, where the answers trade places (torch-fidelity#58 shows a swapped call
scoring a collapsed model precision ~0, recall ~1).
"""

from __future__ import annotations

import html
import json

import numpy as np
import pytest
from conftest import run_cli

from bench.data import load_dataset
from bench.metrics import Reliability, specs
from bench.metrics.per_sample import realism_scores
from bench.metrics.prdc import prdc_metrics, score_prdc
from bench.record import JobRecord, Store, default_tracking_uri
from bench.report.render import write_report
from bench.scoring import plan, small_n_warnings

MODES, DIM, PER_MODE = 10, 8, 200


def mixture(rng: np.random.Generator, per_mode: int, modes=range(MODES)) -> np.ndarray:
    """Points around well-separated centres (distance ~ 20, spread 1)."""
    centres = np.random.default_rng(123).normal(0, 10, (MODES, DIM))
    return np.concatenate([centres[m] + rng.normal(0, 1, (per_mode, DIM)) for m in modes])


def one_mode(rng):
    return mixture(rng, MODES * PER_MODE, modes=[3])


def class_dropper(rng):
    return mixture(rng, 2 * PER_MODE, modes=range(0, MODES, 2))


def noisy(rng):
    return mixture(rng, PER_MODE) + rng.normal(0, 8, (MODES * PER_MODE, DIM))


class Context:
    """The part of a ScoringContext score_prdc reads: train and fake features."""

    def __init__(self, train: np.ndarray, fake: np.ndarray):
        self._features = {"train": train, "fake": fake}

    def features(self, extractor: str, which: str) -> np.ndarray:
        return self._features[which]

    def column(self, extractor: str) -> str:
        return extractor


def registered(train: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """The prdc metric as a suite runs it, keyed precision/recall/density/coverage."""
    out = score_prdc(Context(train, fake), "x")
    return {k.split("_")[0]: v for k, v in out.items()}


@pytest.fixture(scope="module")
def real():
    return mixture(np.random.default_rng(0), PER_MODE)


def test_a_one_mode_model_is_precise_but_recalls_and_covers_little(real):
    fake = one_mode(np.random.default_rng(1))
    m = registered(real, fake)
    assert m["precision"] > 0.8 and m["density"] > 0.8
    assert m["recall"] < 0.15 and m["coverage"] < 0.15
    swapped = prdc_metrics(fake, real)  # fake passed as real: the answers trade places
    assert swapped["precision"] < 0.15 and swapped["recall"] > 0.8


def test_a_class_dropper_covers_the_half_it_keeps(real):
    fake = class_dropper(np.random.default_rng(2))
    m = registered(real, fake)
    assert m["precision"] > 0.8 and m["density"] > 0.8
    assert 0.35 < m["recall"] < 0.6 and 0.4 < m["coverage"] < 0.6
    swapped = prdc_metrics(fake, real)
    assert 0.35 < swapped["precision"] < 0.6 and swapped["recall"] > 0.8


def test_a_noisy_model_recalls_much_but_is_imprecise(real):
    fake = noisy(np.random.default_rng(3))
    m = registered(real, fake)
    assert m["precision"] < 0.1 and m["density"] < 0.1
    assert m["recall"] > 0.9
    swapped = prdc_metrics(fake, real)
    assert swapped["precision"] > 0.9 and swapped["recall"] < 0.1


def test_a_faithful_model_scores_high_on_all_four(real):
    m = registered(real, mixture(np.random.default_rng(4), PER_MODE))
    assert min(m.values()) > 0.8


def test_realism_is_high_on_the_data_and_low_off_it_and_not_symmetric(real):
    faithful = realism_scores(real, mixture(np.random.default_rng(5), PER_MODE))
    collapsed = realism_scores(real, one_mode(np.random.default_rng(6)))
    spread = noisy(np.random.default_rng(7))
    assert np.median(faithful) > 1 and np.median(collapsed) > 1
    assert np.median(realism_scores(real, spread)) < 0.5
    # swapped, the noisy set's wide spheres take in every real point
    assert np.median(realism_scores(spread, real)) > 1


# -- small-n warnings ------------------------------------------------------------------------


def test_each_threshold_is_declared_with_its_metric_and_a_reason():
    declared = {name: spec.reliable for name, spec in specs().items() if spec.reliable}
    assert declared["kid"].min_n == 1000 and declared["prdc"].min_n == 10000
    assert declared["fd"].per_dim == 2
    assert all(r.why for r in declared.values())


def test_a_warning_is_one_line_below_the_threshold_only():
    rel = Reliability(why="because", min_n=100, per_dim=2)
    assert rel.warning("fd_x", 200, 100) is None
    assert rel.warning("fd_x", 150, None) is None  # dimension unknown: min_n alone
    line = rel.warning("fd_x", 199, 100)
    assert line == "small n: fd_x with n = 199 < 200: because"


def test_planned_metrics_warn_at_small_n_in_their_feature_spaces():
    data = load_dataset("digits")
    planned = plan(["fd_pixels", "kid_pixels", "prdc_pixels", "vendi_pixels"], data, [], 500)
    # 8x8 digits: 64 pixel dimensions, so FD warns below 128 samples; vendi declares none
    lines = small_n_warnings(planned, data, 500)
    assert [line.split(" with")[0] for line in lines] == [
        "small n: kid_pixels",
        "small n: prdc_pixels",
    ]
    assert small_n_warnings(planned, data, 20000) == []
    assert "fd_pixels with n = 100 < 128" in small_n_warnings(planned, data, 100)[0]


def test_eval_prints_each_small_n_warning_on_one_line(tmp_path):
    np.savez(tmp_path / "s.npz", load_dataset("digits").test.x.numpy()[:300])
    res = run_cli(
        "eval", "--samples", str(tmp_path / "s.npz"), "--dataset", "digits",
        "--features", "pixels", "--metrics", "kid,fd", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    warned = [line for line in res.stderr.splitlines() if line.startswith("warning: small n")]
    assert warned == ["warning: " + json.loads(res.stdout)["warnings"][0]]
    assert "kid_pixels with n = 300 < 1000" in warned[0]


def test_the_leaderboard_footer_shows_each_warning_once(tmp_path):
    store = Store(default_tracking_uri(tmp_path))
    exp = store.experiment("s", tmp_path / "mlruns" / "artifacts")
    line = "small n: kid_pixels with n = 300 < 1000: subsets shrink"
    for model in ("a", "b"):
        record = JobRecord(
            job_key=model, fit_key=model, samples_key="s", suite="s", suite_version="1",
            dataset="digits", dataset_hash="h", model=model, model_ref=model,
            source="trained", seed=0, metrics={"kid_pixels_n300": 0.1},
            artifacts={"report_data.json": json.dumps({"small_n_warnings": [line]}).encode()},
        )  # fmt: skip
        store.start_job(exp, record, None)
        store.finish_job(record)
    write_report(store, tmp_path, "s")
    assert (tmp_path / "leaderboard.md").read_text().count(f"warning: {line}") == 1
    assert (tmp_path / "leaderboard.html").read_text().count(html.escape(f"warning: {line}")) == 1
