"""Reference "models" with known answers: they give the metrics their floor and ceiling.

copier          returns training images: the best possible FD, and must be flagged as memorizing
pixel-gaussian  independent per-pixel Gaussian fitted to the training set: a weak floor
noisy-copier    training images plus Gaussian noise: memorizes, but a little off the manifold
class-dropper   real training images of only some classes: perfect quality, missing modes
mixture         Gaussian mixture on PCA coefficients of the training set: a smooth, blurry
                model that generalizes a little

Class-conditional (they take num_classes and are asked for labels):
cond-copier     a training image of the asked class: the best conditional scores
label-shuffler  a training image of a class drawn uniformly, whatever was asked: perfect
                unconditional quality, conditional accuracy about 1/K
"""

from __future__ import annotations

import numpy as np
import torch

from bench.data import ImageDataset
from bench.errors import UserError
from bench.models import Budget, Progress, Spent, register_model
from bench.samples import require_finite


def _to_output(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "points":
        return x.float()
    require_finite(x)
    return x.round().clamp(0, 255).to(torch.uint8)


@register_model("copier")
class Copier:
    """Samples training examples uniformly without replacement (with, once n exceeds them)."""

    reference = True  # a known answer, not a model to rank

    def __init__(self, kind: str = "images"):
        self.kind = kind
        self.train = torch.empty(0)

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        self.train = data.train.x.clone()
        return Spent(steps=0)

    def sample(self, n: int, *, generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
        N = len(self.train)
        reps = -(-n // N)
        idx = torch.cat([torch.randperm(N, generator=generator) for _ in range(reps)])[:n]
        return self.train[idx].clone()

    def state_dict(self) -> dict:
        return {"train": self.train}

    def load_state_dict(self, sd: dict) -> None:
        self.train = sd["train"]


@register_model("pixel-gaussian")
class PixelGaussian:
    """Each pixel (or coordinate) an independent Gaussian with the training mean and std."""

    reference = True  # a known answer, not a model to rank

    def __init__(self, kind: str = "images"):
        self.kind = kind
        self.mean = torch.empty(0)
        self.std = torch.empty(0)

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        x = data.train.x.double()
        self.mean, self.std = x.mean(0).float(), x.std(0).float()
        return Spent(steps=0)

    def sample(self, n: int, *, generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
        noise = torch.randn((n, *self.mean.shape), generator=generator)
        return _to_output(self.mean + self.std * noise, self.kind)

    def state_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}

    def load_state_dict(self, sd: dict) -> None:
        self.mean, self.std = sd["mean"], sd["std"]


@register_model("noisy-copier")
class NoisyCopier(Copier):
    """Copier's samples plus N(0, std^2) noise (pixel units for images, coordinate units for
    points), then rounded and clipped to [0, 255] for images. The noise is drawn from the
    generator after Copier's draw, so with the same seed it is copier's output + noise."""

    def __init__(self, kind: str = "images", std: float = 8.0):
        super().__init__(kind)
        self.std = float(std)

    def sample(self, n: int, *, generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
        x = super().sample(n, generator=generator, batch_size=batch_size).float()
        noise = torch.randn(x.shape, generator=generator)
        return _to_output(x + self.std * noise, self.kind)


@register_model("class-dropper")
class ClassDropper(Copier):
    """Copier restricted to some classes: `keep_classes` (a list of labels), or else `drop`
    (the last `drop` classes are left out; default half of them)."""

    def __init__(
        self, kind: str = "images", keep_classes: list[int] | None = None, drop: int | None = None
    ):
        super().__init__(kind)
        if keep_classes is not None and drop is not None:
            raise UserError("class-dropper: give keep_classes or drop, not both")
        self.keep_classes = None if keep_classes is None else [int(c) for c in keep_classes]
        self.drop = drop

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        if data.train.y is None:
            raise UserError(f"class-dropper needs class labels; dataset {data.name!r} has none")
        num_classes = data.num_classes or int(data.train.y.max()) + 1
        keep = self.keep_classes
        if keep is None:
            drop = num_classes // 2 if self.drop is None else int(self.drop)
            if not 0 <= drop < num_classes:
                raise UserError(f"class-dropper: drop must be in 0..{num_classes - 1}, not {drop}")
            keep = list(range(num_classes - drop))
        selected = torch.isin(data.train.y, torch.tensor(keep))
        if not selected.any():
            raise UserError(f"class-dropper: no training images of classes {keep}")
        self.train = data.train.x[selected].clone()
        return Spent(steps=0)


@register_model("mixture")
class PCAMixture:
    """A full-covariance Gaussian mixture (sklearn, EM) fitted to the first `n_pca` principal
    components of the training images (or points); samples are mapped back through the PCA
    basis, so they lie in the PCA subspace. Options: n_components=10, n_pca=32."""

    reference = True  # a known answer, not a model to rank

    def __init__(self, kind: str = "images", n_components: int = 10, n_pca: int = 32):
        self.kind = kind
        self.n_components, self.n_pca = n_components, n_pca
        self.shape: tuple[int, ...] = ()
        self.mean = self.basis = self.weights = self.means = self.chols = torch.empty(0)

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        from sklearn.decomposition import PCA
        from sklearn.mixture import GaussianMixture

        x = data.train.x.reshape(len(data.train.x), -1).double().numpy()
        k = min(self.n_pca, x.shape[1], len(x))
        pca = PCA(n_components=k, random_state=seed).fit(x)
        coeffs = pca.transform(x)
        gmm = GaussianMixture(self.n_components, covariance_type="full", random_state=seed)
        gmm.fit(coeffs)
        self.shape = tuple(data.shape)
        self.mean = torch.from_numpy(pca.mean_).float()
        self.basis = torch.from_numpy(pca.components_).float()
        self.weights = torch.from_numpy(gmm.weights_).float()
        self.means = torch.from_numpy(gmm.means_).float()
        self.chols = torch.from_numpy(np.linalg.cholesky(gmm.covariances_)).float()
        return Spent(steps=0)

    def sample(self, n: int, *, generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn((n, self.means.shape[1]), generator=generator)
        coeffs = self.means[comp] + torch.einsum("nij,nj->ni", self.chols[comp], eps)
        x = self.mean + coeffs @ self.basis
        return _to_output(x.view(n, *self.shape), self.kind)

    def state_dict(self) -> dict:
        return {
            "shape": list(self.shape),
            "mean": self.mean,
            "basis": self.basis,
            "weights": self.weights,
            "means": self.means,
            "chols": self.chols,
        }

    def load_state_dict(self, sd: dict) -> None:
        self.shape = tuple(sd["shape"])
        self.mean, self.basis = sd["mean"], sd["basis"]
        self.weights, self.means, self.chols = sd["weights"], sd["means"], sd["chols"]


@register_model("cond-copier")
class ConditionalCopier:
    """For each asked label, a training image of that class, uniformly at random."""

    reference = True  # a known answer, not a model to rank

    def __init__(self, num_classes: int):
        self.num_classes = int(num_classes)
        self.train = torch.empty(0)
        self.train_y = torch.empty(0, dtype=torch.int64)

    def fit(self, data: ImageDataset, budget: Budget, *, seed: int, progress: Progress) -> Spent:
        counts = torch.bincount(data.train.y, minlength=self.num_classes)
        if (counts == 0).any():
            empty = torch.nonzero(counts == 0).flatten().tolist()
            raise UserError(f"{type(self).__name__}: no training images of classes {empty}")
        self.train, self.train_y = data.train.x.clone(), data.train.y.to(torch.int64).clone()
        return Spent(steps=0)

    def sample(
        self, n: int, *, labels: torch.Tensor, generator: torch.Generator, batch_size: int = 256
    ) -> torch.Tensor:
        return self.train[self.pick(labels, generator)].clone()

    def pick(self, classes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Indices of training images, one of class classes[i] for each i, uniformly."""
        order = torch.argsort(self.train_y, stable=True)  # the images grouped by class
        counts = torch.bincount(self.train_y, minlength=self.num_classes)
        starts = torch.cumsum(counts, 0) - counts
        u = torch.rand(len(classes), generator=generator, dtype=torch.float64)
        offset = (u * counts[classes]).long().clamp(max=counts[classes] - 1)
        return order[starts[classes] + offset]

    def state_dict(self) -> dict:
        return {"train": self.train, "train_y": self.train_y}

    def load_state_dict(self, sd: dict) -> None:
        self.train, self.train_y = sd["train"], sd["train_y"]


@register_model("label-shuffler")
class LabelShuffler(ConditionalCopier):
    """A training image of a class drawn uniformly from the K classes, independently of the
    asked label (it is ignored): real images, balanced classes, no conditional fidelity."""

    def sample(
        self, n: int, *, labels: torch.Tensor, generator: torch.Generator, batch_size: int = 256
    ) -> torch.Tensor:
        classes = torch.randint(self.num_classes, (n,), generator=generator)
        return self.train[self.pick(classes, generator)].clone()
