"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018, ProGAN).

As tkarras/progressive_growing_of_gans `metrics/sliced_wasserstein.py`: each image's
Laplacian pyramid (cv2.pyrDown/pyrUp with the 5x5 binomial filter, mirror edges, float32);
at each level 128 random 7x7 patches per image (all channels); each set's descriptors
normalized per level and channel by that set's own mean and std; then the mean over 4
repeats of the mean |sorted projection difference| along 128 random unit directions; x1e3.
Both sets must hold as many images.

Adapted to small images: ProGAN keeps the levels of at least 16 pixels (from 1024 down to
16); here a level is kept while it has at least 8 pixels a side (a 7x7 patch with room to
move) and the level above it has an even size (so that pyrUp restores it): 28x28 gives
levels 28 and 14, 32x32 gives 32, 16 and 8, 8x8 gives one level. Columns name each level by
its size and the average by the count of levels. ProGAN takes RGB only; here a patch
holds the image's channels (1 or 3).

Random numbers come from one np.random.RandomState(seed), drawn in ProGAN's order: per
batch of images, per level, the patch columns then rows; then per level and repeat, the
directions of the real-fake comparison.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage

from bench.errors import UserError
from bench.imageio import check_uint8_nchw
from bench.metrics import register_metric
from bench.scoring import ScoringContext, equal_size_subset

PATCH = 7
PATCHES_PER_IMAGE = 128
REPEATS = 4
DIRECTIONS_PER_REPEAT = 128
MIN_LEVEL_SIZE = PATCH + 1
BATCH = 256  # images per pyramid pass: it orders the random patch positions, as ProGAN's
SCALE = 1e3

_BINOMIAL = np.float32([1, 4, 6, 4, 1])
_KERNEL = (np.outer(_BINOMIAL, _BINOMIAL) / 256.0).astype(np.float32)[None, None]


def level_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """(height, width) of each pyramid level kept for images of this size."""
    if min(height, width) < MIN_LEVEL_SIZE:
        raise UserError(
            f"SWD needs images of at least {MIN_LEVEL_SIZE}x{MIN_LEVEL_SIZE} for its "
            f"{PATCH}x{PATCH} patches, got {height}x{width}"
        )
    sizes = [(height, width)]
    while True:
        h, w = sizes[-1]
        down = ((h + 1) // 2, (w + 1) // 2)
        if h % 2 or w % 2 or min(down) < MIN_LEVEL_SIZE:
            return sizes
        sizes.append(down)


def _down(x: np.ndarray) -> np.ndarray:
    return scipy.ndimage.convolve(x, _KERNEL, mode="mirror")[:, :, ::2, ::2]


def _up(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    spread = np.zeros((n, c, 2 * h, 2 * w), x.dtype)
    spread[:, :, ::2, ::2] = x
    return scipy.ndimage.convolve(spread, _KERNEL * 4.0, mode="mirror")


def laplacian_pyramid(images: np.ndarray, levels: int) -> list[np.ndarray]:
    """float32 band-pass levels, finest first; the last is the low-pass residual."""
    pyramid = [images.astype(np.float32)]
    for _ in range(1, levels):
        pyramid.append(_down(pyramid[-1]))
        pyramid[-2] -= _up(pyramid[-1])
    return pyramid


def _patches(level: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """(n x 128, C, 7, 7) patches at random centres at least 3 pixels from the edges, each
    stored transposed (axis 2 runs along x), as ProGAN's np.ogrid indexing stores them: the
    order of a descriptor's components decides what each random direction weighs."""
    n, c, h, w = level.shape
    half = PATCH // 2
    count = n * PATCHES_PER_IMAGE
    cols = rng.randint(half, w - half, size=count)
    rows = rng.randint(half, h - half, size=count)
    image = np.arange(count) // PATCHES_PER_IMAGE
    offsets = np.arange(-half, half + 1)
    xs = (cols[:, None] + offsets)[:, None, :, None]
    ys = (rows[:, None] + offsets)[:, None, None, :]
    return level[image[:, None, None, None], np.arange(c)[None, :, None, None], ys, xs]


def _normalized(patches: list[np.ndarray]) -> np.ndarray:
    """(count, C*7*7): each channel less its mean over the set, over its std."""
    desc = np.concatenate(patches, axis=0)
    desc -= desc.mean(axis=(0, 2, 3), keepdims=True)
    desc /= desc.std(axis=(0, 2, 3), keepdims=True)
    return desc.reshape(len(desc), -1)


def descriptors(images: np.ndarray, levels: int, rng: np.random.RandomState) -> list[np.ndarray]:
    """Each level's normalized patch descriptors of a uint8 NCHW set."""
    found: list[list[np.ndarray]] = [[] for _ in range(levels)]
    for start in range(0, len(images), BATCH):
        pyramid = laplacian_pyramid(images[start : start + BATCH], levels)
        for lod, level in enumerate(pyramid):
            found[lod].append(_patches(level, rng))
    return [_normalized(d) for d in found]


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, rng: np.random.RandomState) -> float:
    """Mean over repeats and random unit directions of the mean |sorted a.u - sorted b.u|."""
    means = []
    for _ in range(REPEATS):
        directions = rng.randn(a.shape[1], DIRECTIONS_PER_REPEAT)
        directions /= np.sqrt(np.square(directions).sum(axis=0, keepdims=True))
        directions = directions.astype(np.float32)
        pa, pb = np.sort(a @ directions, axis=0), np.sort(b @ directions, axis=0)
        means.append(np.mean(np.abs(pa - pb)))
    return float(np.mean(means))


def swd(real, fake, *, seed: int = 0) -> dict[str, float | list]:
    """{"sizes": [(h, w) per level], "levels": [SWD x 1e3 per level], "average": their mean}
    between two equally many uint8 NCHW images of one size."""
    r = check_uint8_nchw(real, "real images").numpy()
    f = check_uint8_nchw(fake, "fake images").numpy()
    if r.shape != f.shape:
        raise UserError(
            f"SWD compares equally many images of one shape, got {r.shape} and {f.shape}"
        )
    sizes = level_sizes(*r.shape[2:])
    rng = np.random.RandomState(seed)
    real_desc = descriptors(r, len(sizes), rng)
    fake_desc = descriptors(f, len(sizes), rng)
    pairs = zip(real_desc, fake_desc, strict=True)
    levels = [SCALE * sliced_wasserstein(a, b, rng) for a, b in pairs]
    return {"sizes": sizes, "levels": levels, "average": float(np.mean(levels))}


def _size_name(size: tuple[int, int]) -> str:
    h, w = size
    return f"{h}px" if h == w else f"{h}x{w}px"


@register_metric("swd", columns={"swd_": ("lower", 9)}, needs={"images"})
def score_swd(ctx: ScoringContext) -> dict[str, float]:
    """Sliced Wasserstein distance x1e3 on Laplacian-pyramid 7x7 patches (ProGAN), per level
    and averaged, against an equally sized training subset."""
    m = min(ctx.n, len(ctx.data.train.x))
    fake = equal_size_subset(ctx.fake.cpu().numpy(), m)
    real = equal_size_subset(ctx.data.train.x.numpy(), m)
    result = swd(real, fake)
    out = {
        f"swd_x1e3_{_size_name(size)}_n{m}": value
        for size, value in zip(result["sizes"], result["levels"], strict=True)
    }
    out[f"swd_x1e3_avg{len(result['levels'])}lv_n{m}"] = result["average"]
    return out
