"""Translation tasks: the datasets, the paired metrics against scikit-image and
torchmetrics, and the references bounding every translation metric on both tasks."""

import numpy as np
import pytest
import torch

from bench.data import dataset_arrays, load_dataset
from bench.data.translation import sobel_edges, upscale_to_mnist
from bench.errors import UserError
from bench.metrics.psnr import PSNR_CAP_DB, psnr_per_image
from bench.metrics.ssim import RADIUS, ssim_per_image
from bench.models import Budget, build_model, resolve_model
from bench.scoring import ScoringContext, score
from bench.translation import is_translation, paired, source
from bench.translation.translate import translate_sources

N = 350
METRICS = ["l1", "psnr", "ssim", "label_kept", "fd_target", "kid_target", "cycle_psnr"]
FD = f"fd_target_classifier_n{N}"


def test_sobel_edges_of_a_square_are_its_outline():
    image = np.zeros((1, 1, 6, 6), np.uint8)
    image[0, 0, 2:4, 2:4] = 255
    edges = sobel_edges(image)[0, 0]
    assert edges.dtype == np.uint8 and set(np.unique(edges)) == {0, 255}
    # the gradient reaches one pixel either side of the square's border, not the corners far off
    assert edges[2:4, 2:4].all() and edges[1, 2] == 255 and edges[0, 0] == 0
    flat = sobel_edges(np.full((1, 1, 6, 6), 200, np.uint8))[0, 0]
    assert (flat[1:-1, 1:-1] == 0).all() and flat[0, 3] == 255  # the zero padding is an edge


def test_upscale_keeps_the_corners_and_fills_the_mnist_box():
    image = np.arange(64, dtype=np.uint8).reshape(1, 1, 8, 8) * 4
    out = upscale_to_mnist(image)[0, 0]
    assert out.shape == (28, 28)
    assert out[4, 4] == image[0, 0, 0, 0] and out[23, 23] == image[0, 0, 7, 7]
    assert out[:4].max() == 0 and out[24:].max() == 0


@pytest.mark.parametrize(
    "name, paired_, source_name",
    [
        ("edges2mnist", True, "edges:mnist5k"),
        ("digits2mnist", False, "digits28"),
        ("mnist2digits", False, "mnist5k"),
    ],
)
def test_tasks_pair_two_labelled_domains(name, paired_, source_name):
    task = dataset_arrays(name)
    assert is_translation(task) and paired(task) is paired_
    assert source(task).name == source_name and task.shape == source(task).shape == (1, 28, 28)
    assert source(task).test.y is not None and task.num_classes == 10
    if paired_:  # pair i: the edges of target image i, in the shuffled test order
        np.testing.assert_array_equal(source(task).test.x, sobel_edges(task.test.x))
        np.testing.assert_array_equal(source(task).test.y, task.test.y)
    # the first N test sources a job translates hold every class
    assert set(source(task).test.y[:N].tolist()) == set(range(10))


def test_a_task_hash_covers_its_source():
    edges, mnist = dataset_arrays("edges2mnist"), dataset_arrays("mnist5k")
    assert edges.content_hash != mnist.content_hash
    assert (
        dataset_arrays("digits2mnist").content_hash != dataset_arrays("mnist2digits").content_hash
    )


def test_the_tasks_are_the_same_bytes_on_every_machine():
    """Integer edge maps and float64 resampling rounded half to even: pinned hashes (the
    Sobel arithmetic moved from int64 to int32 without changing one)."""
    assert dataset_arrays("edges2mnist").content_hash == "8978d45f2d1c5342"
    assert dataset_arrays("digits2mnist").content_hash == "78b2e4b23a3364a2"


def random_pairs(seed: int, shape=(6, 3, 28, 28)):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    noise = rng.integers(-40, 41, shape)
    return x, np.clip(x.astype(int) + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_and_psnr_equal_scikit_image(seed):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    x, y = random_pairs(seed)
    ours_ssim, ours_psnr = ssim_per_image(x, y), psnr_per_image(x, y)
    for i in range(len(x)):
        theirs = structural_similarity(
            y[i],
            x[i],
            channel_axis=0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255,
        )
        assert ours_ssim[i] == pytest.approx(theirs, abs=1e-6)
        assert ours_psnr[i] == pytest.approx(
            peak_signal_noise_ratio(y[i], x[i], data_range=255), abs=1e-6
        )


def test_ssim_and_psnr_equal_torchmetrics():
    """torchmetrics averages the SSIM map over the whole image, its border computed on
    reflect padding; scikit-image (and genbench) over the positions where the window fits.
    On those positions the two maps are equal."""
    from torchmetrics.functional.image import (
        peak_signal_noise_ratio,
        structural_similarity_index_measure,
    )

    x, y = random_pairs(2)
    tx, ty = torch.from_numpy(x).double(), torch.from_numpy(y).double()
    for i in range(len(x)):
        _, full_map = structural_similarity_index_measure(
            tx[i : i + 1], ty[i : i + 1], data_range=255.0, return_full_image=True
        )
        theirs = full_map[..., RADIUS:-RADIUS, RADIUS:-RADIUS].mean()
        ours = ssim_per_image(x[i : i + 1], y[i : i + 1])[0]
        assert ours == pytest.approx(float(theirs), abs=1e-6)
        psnr = peak_signal_noise_ratio(tx[i : i + 1], ty[i : i + 1], data_range=255.0)
        assert psnr_per_image(x[i : i + 1], y[i : i + 1])[0] == pytest.approx(float(psnr), abs=1e-6)


def test_psnr_of_an_exact_match_is_the_cap():
    x, _ = random_pairs(3)
    assert (psnr_per_image(x, x) == PSNR_CAP_DB).all()
    assert ssim_per_image(x, x) == pytest.approx(1.0, abs=1e-12)


def scores(model_name: str, task_name: str) -> dict[str, float]:
    task = load_dataset(task_name)
    model = build_model(resolve_model(model_name), task, {})
    model.fit(task, Budget(0), seed=0, progress=lambda step, values: None)
    fake = translate_sources(model, task, N, torch.Generator().manual_seed(0), 256)
    ctx = ScoringContext(task, fake, torch.device("cpu"), model=model)
    return score(ctx, METRICS)


@pytest.fixture(scope="module")
def edges():
    return {m: scores(m, "edges2mnist") for m in ("identity", "target-sampler", "oracle")}


@pytest.fixture(scope="module")
def digits():
    return {m: scores(m, "digits2mnist") for m in ("identity", "target-sampler")}


def classifier_accuracy(task_name: str, images: str) -> float:
    """The target classifier's accuracy on the first N test images of the task's 'source'
    or 'target' domain."""
    from bench.features.classifier import load_classifier

    task = load_dataset(task_name)
    split = (source(task) if images == "source" else task).test
    logits = load_classifier(task).logits(split.x[:N])
    return float((logits.argmax(1) == split.y[:N].numpy()).mean())


def test_oracle_is_the_ceiling_of_the_paired_metrics(edges):
    oracle = edges["oracle"]
    assert oracle["psnr"] == PSNR_CAP_DB and oracle["l1"] == 0 and oracle["ssim"] == 1
    assert oracle["label_kept"] == pytest.approx(classifier_accuracy("edges2mnist", "target"))
    for name in ("identity", "target-sampler"):
        assert edges[name]["psnr"] < 15 and edges[name]["ssim"] < 0.5 and edges[name]["l1"] > 0.1
    assert oracle[FD] < edges["identity"][FD]


def test_target_sampler_matches_the_target_and_keeps_no_label(edges, digits):
    for refs in (edges, digits):
        sampler = refs["target-sampler"]
        assert sampler[FD] < 5 and sampler[FD] < refs["identity"][FD] / 10
        assert abs(sampler["label_kept"] - 0.1) < 0.05
    assert edges["target-sampler"][FD] < 3 * edges["oracle"][FD] + 2  # near-oracle


def test_identity_on_digits2mnist_is_far_but_keeps_labels(digits):
    identity = digits["identity"]
    assert identity[FD] > 10 * digits["target-sampler"][FD]
    # the target classifier's accuracy on the sources (0.22: upscaled sklearn digits are
    # thicker and blurrier than MNIST's)
    assert identity["label_kept"] == pytest.approx(classifier_accuracy("digits2mnist", "source"))
    assert identity["cycle_psnr"] == PSNR_CAP_DB  # translating back is the identity too
    assert "psnr" not in identity  # paired metrics skip the unpaired task


def test_translation_metrics_refuse_a_generation_dataset():
    with pytest.raises(UserError, match="is not a translation task"):
        score(
            ScoringContext(
                load_dataset("digits"),
                torch.zeros(4, 1, 8, 8, dtype=torch.uint8),
                torch.device("cpu"),
            ),
            ["psnr"],
        )


def test_generation_and_translation_models_stay_apart():
    with pytest.raises(UserError, match="generates images and 'edges2mnist' is a translation"):
        build_model(resolve_model("copier"), load_dataset("edges2mnist"), {})
    with pytest.raises(UserError, match="translates images and 'digits' is not a translation"):
        build_model(resolve_model("identity"), load_dataset("digits"), {})
    with pytest.raises(UserError, match="learns from paired images and 'digits2mnist' is unpaired"):
        build_model(resolve_model("oracle"), load_dataset("digits2mnist"), {})
