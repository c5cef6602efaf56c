"""Per-sample scores: the realism score against a transcription of the authors' code, the
nearest training image, the panel, and the artifacts a suite run leaves."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import job_runs, run_cli, write_suite

from bench.metrics.per_sample import nearest_training, realism_scores
from bench.record import Store, default_tracking_uri
from bench.report.per_sample import COUNT, draw_panel, panel_rows

# -- oracle: kynkaat/improved-precision-and-recall-metric's realism, as guided-diffusion's
# evaluations/evaluator.py copies it (ManifoldEstimator.manifold_radii with
# clamp_to_percentile=50, then evaluate's max_realism_score), on squared distances.


def oracle_realism(real, fake, k=3, clamp_to_percentile=50, eps=1e-5):
    def squared_distances(u, v):
        norm_u = np.sum(np.square(u), 1).reshape([-1, 1])
        norm_v = np.sum(np.square(v), 1).reshape([1, -1])
        return np.maximum(norm_u - 2 * u @ v.T + norm_v, 0.0)

    d_real = squared_distances(real, real)
    seq = np.arange(k + 1)
    radii = np.partition(d_real, seq, axis=1)[:, [k]]  # column 0 is the point itself
    max_distances = np.percentile(radii, clamp_to_percentile, axis=0)
    radii[radii > max_distances] = 0
    d = squared_distances(fake, real)
    return np.max(radii[:, 0] / (d + eps), axis=1)


def test_realism_is_the_square_root_of_the_authors_score():
    rng = np.random.default_rng(0)
    real = rng.normal(0, 1, (300, 16))
    fake = np.concatenate([rng.normal(0, 1, (100, 16)), rng.normal(0, 3, (50, 16))])
    ours = realism_scores(real, fake)
    ref = oracle_realism(real, fake)
    # eps sits under the square in one and outside it in the other: ~2 eps / distance
    np.testing.assert_allclose(ours**2, ref, rtol=1e-4)
    assert np.array_equal(np.argsort(ours), np.argsort(ref))


def test_samples_on_the_data_are_realistic_and_far_ones_are_not():
    rng = np.random.default_rng(1)
    real = rng.normal(0, 1, (400, 8))
    near, far = rng.normal(0, 0.5, (50, 8)), rng.normal(0, 1, (50, 8)) + 20
    scores = realism_scores(real, np.concatenate([near, far]))
    assert np.median(scores[:50]) > 1 and scores[50:].max() < 0.2


def test_pruning_drops_the_largest_half_of_the_real_spheres():
    # one real outlier with a huge sphere: unpruned, a sample near it would score high
    real = np.concatenate([np.random.default_rng(2).normal(0, 1, (99, 2)), [[50.0, 50.0]]])
    scores = realism_scores(real, np.array([[45.0, 45.0]]))
    assert scores[0] < 0.1


def test_nearest_training_finds_copies():
    train = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8)
    fake = torch.cat([train[[7, 3]], torch.zeros(1, 1, 8, 8, dtype=torch.uint8)])
    dist, idx = nearest_training(fake, train)
    assert dist[:2].tolist() == [0.0, 0.0] and idx[:2].tolist() == [7, 3]
    flat = train.reshape(40, -1).double() / 255
    assert dist[2] == pytest.approx(float(flat.norm(dim=1).min()))


def test_panel_rows_and_picture():
    n = 40
    scores = {
        "realism": list(np.linspace(2, 0, n)),  # sample 0 most realistic
        "nearest_train_distance_pixels": list(np.arange(n)[::-1] / 10.0),  # sample n-1 closest
        "nearest_train_index": list(range(100, 100 + n)),
    }
    rows = panel_rows(scores)
    assert rows["least_realistic"][0] == n - 1 and rows["most_realistic"][0] == 0
    assert rows["closest"][0] == n - 1 and rows["their_training_images"][0] == 100 + n - 1
    samples = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8)
    train = torch.randint(0, 256, (200, 1, 8, 8), dtype=torch.uint8)
    picture = draw_panel(samples, train, scores)
    scale = picture.width // (COUNT * 9 + 1)
    assert picture.size == ((COUNT * 9 + 1) * scale, (4 * 9 + 1) * scale)


def test_a_suite_run_stores_the_scores_and_the_report_shows_the_panel(tmp_path):
    suite = write_suite(
        tmp_path,
        "- name: copier\n- name: pixel-gaussian\n",
        name="ps",
        metrics="[per_sample_pixels]",
        n_samples=60,
    )
    out = tmp_path / "out"
    res = run_cli("run", suite, "--out", str(out), "--jobs", "1")
    assert res.returncode == 0, res.stderr
    store = Store(default_tracking_uri(out))
    for run in job_runs(store, "ps"):
        scores = json.loads(store.artifact(run.info.run_id, "per_sample.json"))["pixels"]
        assert len(scores["realism"]) == len(scores["nearest_train_index"]) == 60
        assert store.artifact(run.info.run_id, "per_sample.png") is not None
        if run.data.tags["genbench.model"] == "copier":  # copies of training images
            assert max(scores["nearest_train_distance_pixels"]) == 0.0
        report_data = store.artifact(run.info.run_id, "report_data.json")
        assert report_data is None or "per_sample" not in json.loads(report_data)
    page = (out / "leaderboard.html").read_text()
    assert page.count('alt="per-sample panel of ') == 2 and "Per-sample scores" in page
