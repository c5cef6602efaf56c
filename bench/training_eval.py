"""Metrics during training: a suite's `eval_every` makes a training job sample `eval_n` images
every so many optimizer steps (as the fit reports them through its progress callback, so a
plug-in's fit gets it too) and score them on `eval_metrics`, the curve that the job records
as MLflow metric histories. The final row still uses the suite's full protocol.

Each evaluation also measures the FD of its samples against `keep_split` in the suite's
first feature space (the dataset's default when none is named); `keep: best` keeps the
model of the step where that FD was lowest. Choosing on the training split flatters a model
that copies its training images; the test split (the default) does not reward copying.
"""

from __future__ import annotations

import copy
import time

import torch

from bench.data import ImageDataset
from bench.features import default_extractor
from bench.metrics.fd import frechet_distance
from bench.models import GenerativeModel, is_conditional
from bench.samples import check_samples
from bench.scoring import ScoringContext, score

EVAL_SEED = 7_777_777  # one fixed sample stream for every evaluation: the curve shows the model


def choice_column(split: str) -> str:
    return f"keep_fd_{split}"


class TrainingEval:
    """Called with each step the fit reports; scores the model at multiples of eval_every
    (and at the last step, by `finish`), keeping the best state for `keep: best`."""

    def __init__(self, suite, data: ImageDataset, model: GenerativeModel, device) -> None:
        self.suite, self.data, self.model, self.device = suite, data, model, device
        self.history: list[tuple[int, dict[str, float]]] = []
        self.seconds = 0.0
        self.best: tuple[float, int, dict] | None = None  # (fd, step, state)
        self.last_step = -1

    def __call__(self, step: int) -> None:
        if step > self.last_step and step % self.suite.eval_every == 0:
            self.evaluate(step)

    def finish(self, step: int) -> int | None:
        """Evaluate the last step if it was not; load the best state for `keep: best`.
        Returns the step of the model kept (None: the last)."""
        if step > self.last_step:
            self.evaluate(step)
        if self.suite.keep != "best" or self.best is None:
            return None
        fd, kept, state = self.best
        self.model.load_state_dict(state)
        return kept

    def evaluate(self, step: int) -> None:
        t0 = time.perf_counter()
        self.last_step = step
        samples, labels = self.draw()
        ctx = ScoringContext(
            self.data,
            samples,
            self.device,
            fake_labels=labels,
            features_for=self.suite.features,
            weights=self.suite.weights,
            batch_size=self.suite.sample_batch_size,
        )
        values = score(ctx, self.suite.training_metrics)
        extractor = self.suite.features[0] if self.suite.features else default_extractor(self.data)
        split = self.suite.keep_split
        fd = frechet_distance(ctx.features(extractor, "fake"), ctx.features(extractor, split))
        values[choice_column(split)] = fd
        self.history.append((step, values))
        if self.suite.keep == "best" and (self.best is None or fd < self.best[0]):
            self.best = (fd, step, copy.deepcopy(self.model.state_dict()))
        self.seconds += time.perf_counter() - t0

    def draw(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """eval_n samples from a fixed stream, the model's networks put back in the mode
        (train or eval) the fit had them in."""
        from bench.job import asked_labels  # bench.job imports this module

        n, model = self.suite.eval_n, self.model
        g = torch.Generator().manual_seed(EVAL_SEED)
        labels = None
        if is_conditional(model):
            labels = asked_labels(n, "balanced", model.num_classes, self.data.train.y, g)
        modes = training_modes(model)
        try:
            with torch.no_grad():
                kwargs = {} if labels is None else {"labels": labels.clone()}
                x = model.sample(n, generator=g, batch_size=self.suite.sample_batch_size, **kwargs)
        finally:
            for module, mode in modes:
                module.train(mode)
        return check_samples(x, self.data, n), labels


def training_modes(model: object) -> list[tuple[torch.nn.Module, bool]]:
    """Every nn.Module the model holds (as an attribute, one level deep) and its mode."""
    found = [m for m in vars(model).values() if isinstance(m, torch.nn.Module)]
    return [(sub, sub.training) for m in found for sub in m.modules()]
