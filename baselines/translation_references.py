"""Reference translation "models" with known answers: they bound the translation metrics.

identity        returns its input: the source domain as it is (a high FD to the target when
                the domains differ, the source's class kept as well as the target's
                classifier reads source images)
target-sampler  returns random real target training images, ignoring its input: near-best
                FD, chance correspondence (label_kept about 1/K)
oracle          returns each source's true target (paired tasks): the ceiling of every
                paired metric (PSNR at its cap)
"""

from __future__ import annotations

import hashlib

import torch

from bench.data import ImageDataset
from bench.errors import UserError
from bench.models import Budget, Progress, Spent, register_model
from bench.translation import source


@register_model("identity")
class Identity:
    """Translates each image to itself."""

    reference = True  # a known answer, not a model to rank

    def fit(self, task: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        return Spent(steps=0)

    def translate(
        self, x: torch.Tensor, *, generator: torch.Generator, batch_size: int = 256
    ) -> torch.Tensor:
        return x.clone()

    def translate_back(
        self, x: torch.Tensor, *, generator: torch.Generator, batch_size: int = 256
    ) -> torch.Tensor:
        return x.clone()

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, sd: dict) -> None:
        pass


@register_model("target-sampler")
class TargetSampler:
    """Returns a real target training image drawn at random for each input, ignoring it."""

    reference = True  # a known answer, not a model to rank

    def __init__(self) -> None:
        self.targets = torch.empty(0, dtype=torch.uint8)

    def fit(self, task: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        self.targets = task.train.x.clone()
        return Spent(steps=0)

    def translate(
        self, x: torch.Tensor, *, generator: torch.Generator, batch_size: int = 256
    ) -> torch.Tensor:
        pick = torch.randint(len(self.targets), (len(x),), generator=generator)
        return self.targets[pick].clone()

    def state_dict(self) -> dict:
        return {"targets": self.targets}

    def load_state_dict(self, sd: dict) -> None:
        self.targets = sd["targets"]


def _image_key(image: torch.Tensor) -> str:
    return hashlib.sha256(image.contiguous().numpy().tobytes()).hexdigest()


@register_model("oracle")
class Oracle:
    """Returns each source image's true target, looked up among the task's pairs."""

    reference = True  # a known answer, not a model to rank
    needs_pairs = True

    def __init__(self) -> None:
        self.sources = torch.empty(0, dtype=torch.uint8)
        self.targets = torch.empty(0, dtype=torch.uint8)

    def fit(self, task: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        # every pair, the held-out ones included: this reference knows the answers
        self.sources = torch.cat([source(task).train.x, source(task).test.x])
        self.targets = torch.cat([task.train.x, task.test.x])
        return Spent(steps=0)

    def translate(
        self, x: torch.Tensor, *, generator: torch.Generator, batch_size: int = 256
    ) -> torch.Tensor:
        # the last pair with a given source wins (equal edge maps of two digits are rare)
        index = {_image_key(s): i for i, s in enumerate(self.sources)}
        rows = [index.get(_image_key(image)) for image in x]
        if None in rows:
            raise UserError("oracle: an input is not a source image of its task")
        return self.targets[rows].clone()

    def state_dict(self) -> dict:
        return {"sources": self.sources, "targets": self.targets}

    def load_state_dict(self, sd: dict) -> None:
        self.sources, self.targets = sd["sources"], sd["targets"]
