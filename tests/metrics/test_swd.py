"""SWD against a NumPy transcription of tkarras/progressive_growing_of_gans
`metrics/sliced_wasserstein.py` (commit 1c5876cb): get_descriptors_for_minibatch,
finalize_descriptors, sliced_wasserstein, pyr_down, pyr_up, generate_laplacian_pyramid and
the API's feed/end, driven by the global np.random as there. Two changes, both marked: the
channel count is the image's (ProGAN asserts 3), and the levels are genbench's small-image
rule (ProGAN keeps levels of 16 pixels and more) passed in."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

from bench.errors import UserError
from bench.metrics.swd import level_sizes, score_swd, swd

# -- the oracle ------------------------------------------------------------------------------


def get_descriptors_for_minibatch(minibatch, nhood_size, nhoods_per_image):
    S = minibatch.shape  # (minibatch, channel, height, width)
    assert len(S) == 4  # changed: ProGAN also asserts S[1] == 3
    N = nhoods_per_image * S[0]
    H = nhood_size // 2
    nhood, chan, x, y = np.ogrid[0:N, 0 : S[1], -H : H + 1, -H : H + 1]  # changed: 0:3
    img = nhood // nhoods_per_image
    x = x + np.random.randint(H, S[3] - H, size=(N, 1, 1, 1))
    y = y + np.random.randint(H, S[2] - H, size=(N, 1, 1, 1))
    idx = ((img * S[1] + chan) * S[2] + y) * S[3] + x
    return minibatch.flat[idx]


def finalize_descriptors(desc):
    if isinstance(desc, list):
        desc = np.concatenate(desc, axis=0)
    assert desc.ndim == 4  # (neighborhood, channel, height, width)
    desc -= np.mean(desc, axis=(0, 2, 3), keepdims=True)
    desc /= np.std(desc, axis=(0, 2, 3), keepdims=True)
    desc = desc.reshape(desc.shape[0], -1)
    return desc


def sliced_wasserstein(A, B, dir_repeats, dirs_per_repeat):
    assert A.ndim == 2 and A.shape == B.shape  # (neighborhood, descriptor_component)
    results = []
    for _repeat in range(dir_repeats):
        dirs = np.random.randn(A.shape[1], dirs_per_repeat)  # (descriptor_component, direction)
        dirs /= np.sqrt(np.sum(np.square(dirs), axis=0, keepdims=True))
        dirs = dirs.astype(np.float32)
        projA = np.matmul(A, dirs)  # (neighborhood, direction)
        projB = np.matmul(B, dirs)
        projA = np.sort(projA, axis=0)
        projB = np.sort(projB, axis=0)
        dists = np.abs(projA - projB)
        results.append(np.mean(dists))
    return np.mean(results)


gaussian_filter = (
    np.float32(
        [
            [1, 4, 6, 4, 1],
            [4, 16, 24, 16, 4],
            [6, 24, 36, 24, 6],
            [4, 16, 24, 16, 4],
            [1, 4, 6, 4, 1],
        ]
    )
    / 256.0
)


def pyr_down(minibatch):  # matches cv2.pyrDown()
    assert minibatch.ndim == 4
    return scipy.ndimage.convolve(
        minibatch, gaussian_filter[np.newaxis, np.newaxis, :, :], mode="mirror"
    )[:, :, ::2, ::2]


def pyr_up(minibatch):  # matches cv2.pyrUp()
    assert minibatch.ndim == 4
    S = minibatch.shape
    res = np.zeros((S[0], S[1], S[2] * 2, S[3] * 2), minibatch.dtype)
    res[:, :, ::2, ::2] = minibatch
    return scipy.ndimage.convolve(
        res, gaussian_filter[np.newaxis, np.newaxis, :, :] * 4.0, mode="mirror"
    )


def generate_laplacian_pyramid(minibatch, num_levels):
    pyramid = [np.float32(minibatch)]
    for _i in range(1, num_levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] -= pyr_up(pyramid[-1])
    return pyramid


def oracle_swd(reals, fakes, num_levels, minibatch_size, seed):
    """API.feed over minibatches of each set, then end's comparison, x1e3, and the mean."""
    np.random.seed(seed)
    desc_sets = []
    for images in (reals, fakes):
        descriptors = [[] for _ in range(num_levels)]
        for start in range(0, len(images), minibatch_size):
            minibatch = images[start : start + minibatch_size]
            for lod, level in enumerate(generate_laplacian_pyramid(minibatch, num_levels)):
                descriptors[lod].append(get_descriptors_for_minibatch(level, 7, 128))
        desc_sets.append([finalize_descriptors(d) for d in descriptors])
    dist = [sliced_wasserstein(a, b, 4, 128) for a, b in zip(*desc_sets, strict=True)]
    dist = [d * 1e3 for d in dist]
    return dist + [np.mean(dist)]


# -- the tests -------------------------------------------------------------------------------


def blobs(seed: int, n: int, c: int, size: int) -> np.ndarray:
    """Smooth random uint8 images: structure at several scales, as the pyramid sees."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, c, size, size))
    x = scipy.ndimage.gaussian_filter(x, (0, 0, 1.5, 1.5)) * 400 + 128
    return np.clip(x + rng.normal(0, 10, x.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("c,size,n", [(3, 32, 300), (1, 28, 40), (1, 8, 30)])
def test_swd_equals_the_progan_transcription(c, size, n):
    real, fake = blobs(1, n, c, size), blobs(2, n, c, size)
    fake[: n // 3] = fake[: n // 3] // 2  # a darker third: a distance worth measuring
    ours = swd(real, fake, seed=3)
    sizes = ours["sizes"]
    ref = oracle_swd(real, fake, len(sizes), minibatch_size=256, seed=3)
    assert len(ref) == len(sizes) + 1
    np.testing.assert_allclose([*ours["levels"], ours["average"]], ref, rtol=1e-5)
    assert min(ours["levels"]) > 1  # not a trivially small number


def test_levels_adapt_to_small_images():
    assert level_sizes(1024, 1024)[-1] == (8, 8) and len(level_sizes(1024, 1024)) == 8
    assert level_sizes(32, 32) == [(32, 32), (16, 16), (8, 8)]
    assert level_sizes(28, 28) == [(28, 28), (14, 14)]
    assert level_sizes(18, 20) == [(18, 20), (9, 10)]
    assert level_sizes(8, 8) == [(8, 8)]
    with pytest.raises(UserError, match="at least 8x8"):
        level_sizes(7, 9)


def test_the_same_distribution_is_closer_than_another_texture():
    real, again = blobs(4, 200, 1, 28), blobs(5, 200, 1, 28)
    noise = np.random.default_rng(6).integers(0, 256, real.shape, dtype=np.uint8)
    same = swd(real, again, seed=0)
    other = swd(real, noise, seed=0)
    for a, b in zip(same["levels"], other["levels"], strict=True):
        assert a < b / 3
    # each set is normalized by its own mean and std: a darker copy looks the same
    assert swd(real, real // 2, seed=0)["average"] < other["average"] / 3


def test_unequal_sets_are_refused():
    with pytest.raises(UserError, match="equally many images"):
        swd(blobs(0, 10, 1, 28), blobs(1, 11, 1, 28))


class Data:
    def __init__(self, train):
        self.train = type("Split", (), {"x": torch.from_numpy(train)})()


class Context:
    """The part of a ScoringContext score_swd reads."""

    def __init__(self, fake, train):
        self.fake = torch.from_numpy(fake)
        self.n = len(fake)
        self.data = Data(train)


def test_the_metric_names_each_level_by_size_and_the_average_by_count():
    out = score_swd(Context(blobs(5, 50, 1, 28), blobs(6, 80, 1, 28)))
    assert sorted(out) == ["swd_x1e3_14px_n50", "swd_x1e3_28px_n50", "swd_x1e3_avg2lv_n50"]
    assert out["swd_x1e3_avg2lv_n50"] == pytest.approx(
        (out["swd_x1e3_28px_n50"] + out["swd_x1e3_14px_n50"]) / 2
    )
