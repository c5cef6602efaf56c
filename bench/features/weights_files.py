"""The weights files that no package ships (DINOv2, CLIP, LPIPS's VGG16): where each is
looked for, where to download it, and the one-line refusal when it is missing, told without
importing torch, so that `genbench run` refuses a suite whose file is missing before torch
loads; bench.features.dinov2, bench.features.clip and bench.features.lpips_vgg16 load from
these places."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.errors import UserError
from bench.features.inception_hub import torch_hub_dir

DINOV2_ARCHS = ("vits14", "vitb14", "vitl14", "vitg14")
DINOV2_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_{arch}/dinov2_{arch}_pretrain.pth"
CLIP_EXTRACTOR = "clip_vitl14_336"
CLIP_SHA256 = "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02"
CLIP_URL = f"https://openaipublic.azureedge.net/clip/models/{CLIP_SHA256}/ViT-L-14-336px.pt"
LPIPS_EXTRACTOR = "lpips_vgg16"
# torchvision's ImageNet VGG16 (IMAGENET1K_V1), the backbone the lpips package loads
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
# how the commands with a --features option (eval, fid, stats) take a weights file
WEIGHTS_OPTION = "pass its path with --weights"


@dataclass(frozen=True)
class WeightsFile:
    what: str  # the network, in messages
    candidates: tuple[Path, ...]  # where it is looked for when no path is given, in order
    url: str  # where a machine with internet gets it


def hub_checkpoints_dir() -> Path:
    """Where torch.hub.load_state_dict_from_url caches files: $TORCH_HOME/hub/checkpoints."""
    return torch_hub_dir() / "checkpoints"


def dinov2_file(arch: str) -> WeightsFile:
    """Meta's checkpoint of DINOv2 `arch`, where torch.hub caches it (facebookresearch/dinov2)."""
    path = hub_checkpoints_dir() / f"dinov2_{arch}_pretrain.pth"
    return WeightsFile(f"DINOv2 {arch}", (path,), DINOV2_URL.format(arch=arch))


def clip_file() -> WeightsFile:
    """OpenAI's ViT-L-14-336px.pt: in the torch hub cache under OpenAI's name and under
    torch-fidelity's, then in the openai/CLIP package's download folder."""
    hub = hub_checkpoints_dir()
    places = (
        hub / "ViT-L-14-336px.pt",
        hub / f"clip-vit-l-14-336px-{CLIP_SHA256}.pt",
        Path.home() / ".cache" / "clip" / "ViT-L-14-336px.pt",
    )
    return WeightsFile("CLIP ViT-L/14@336px", places, CLIP_URL)


def vgg16_file() -> WeightsFile:
    """torchvision's VGG16 state dict, where torch.hub caches it (torchvision.models.vgg16's
    download)."""
    return WeightsFile("VGG16", (hub_checkpoints_dir() / VGG16_URL.rsplit("/", 1)[1],), VGG16_URL)


def extractor_weights_file(extractor: str) -> WeightsFile | None:
    """The file a built-in extractor loads; None for one that needs no such file."""
    if extractor == CLIP_EXTRACTOR:
        return clip_file()
    if extractor == LPIPS_EXTRACTOR:
        return vgg16_file()
    arch = extractor.removeprefix("dinov2_")
    return dinov2_file(arch) if arch != extractor and arch in DINOV2_ARCHS else None


def find_weights(
    given: str | Path | None,
    candidates: tuple[Path, ...] | list[Path],
    what: str,
    url: str,
    how: str = WEIGHTS_OPTION,
) -> Path:
    """`given` when set (it must exist), else the first existing candidate; a UserError
    naming the file, where it was looked for, how to bring it to an offline machine, and
    `how` the command in use takes a path instead."""
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise UserError(f"{what} weights file {path} does not exist")
        return path
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise UserError(
        f"no {what} weights: looked for {looked}; on a machine with internet download {url} "
        f"and copy it to {candidates[0]} here (or {how})"
    )
