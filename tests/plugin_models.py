"""Models defined only in the tests, to exercise every way of plugging a model in."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import torch

from bench.models import Spent, register_model


class MeanModel:
    """Per-pixel training mean plus a little noise; counts fits so tests can see caching."""

    fits = 0

    def __init__(self, shape, noise: float = 8.0, fit_seconds: float = 0.0):
        self.shape = tuple(shape)
        self.noise = noise
        self.fit_seconds = fit_seconds
        self.mean = torch.zeros(self.shape)

    def fit(self, data, budget, *, seed, progress):
        MeanModel.fits += 1
        if os.environ.get("GENBENCH_FIT_LOG"):  # fits in any process, one line each
            with open(os.environ["GENBENCH_FIT_LOG"], "a") as log:
                log.write(f"{type(self).__name__} noise={self.noise}\n")
        time.sleep(self.fit_seconds)
        self.mean = data.train.x.float().mean(0)
        for step in range(1, budget.steps + 1):
            progress(step, {"loss": 1.0 / step})
        return Spent(steps=budget.steps)

    def sample(self, n, *, generator, batch_size):
        x = self.mean + self.noise * torch.randn((n, *self.shape), generator=generator)
        return x.clamp(0, 255).round().to(torch.uint8)

    def state_dict(self):
        return {"mean": self.mean}

    def load_state_dict(self, sd):
        if set(sd) != {"mean"} or tuple(sd["mean"].shape) != self.shape:
            raise RuntimeError(f"expected {{'mean': {self.shape}}}")
        self.mean = sd["mean"]


@register_model("test-mean")
class RegisteredMeanModel(MeanModel):
    pass


class NaNModel(MeanModel):
    def sample(self, n, *, generator, batch_size):
        return torch.full((n, *self.shape), float("nan"))


class WrongShapeModel(MeanModel):
    def sample(self, n, *, generator, batch_size):
        return torch.zeros((n, 3, 5, 5), dtype=torch.uint8)


class CrashModel(MeanModel):
    def fit(self, data, budget, *, seed, progress):
        raise RuntimeError("boom in fit")


def kill_once() -> None:
    """SIGKILL this process the first time (flag file in $GENBENCH_KILL_FLAG)."""
    flag = Path(os.environ["GENBENCH_KILL_FLAG"])
    if not flag.exists():
        flag.write_text("killed once")
        os.kill(os.getpid(), signal.SIGKILL)


class KillOnceModel(MeanModel):
    """Killed during its first fit."""

    def fit(self, data, budget, *, seed, progress):
        kill_once()
        return super().fit(data, budget, seed=seed, progress=progress)


class KillInSamplingModel(MeanModel):
    """Killed while sampling, after its checkpoint was cached."""

    def sample(self, n, *, generator, batch_size):
        kill_once()
        return super().sample(n, generator=generator, batch_size=batch_size)


class StallOnceModel(MeanModel):
    """Stalls in its first sampling, after its fit was cached, until it is stopped; the
    process's id goes to $GENBENCH_STALL_DIR/NOISE.pid (one stall per noise option)."""

    def sample(self, n, *, generator, batch_size):
        flag = Path(os.environ["GENBENCH_STALL_DIR"]) / f"{self.noise}.pid"
        if not flag.exists():
            flag.write_text(str(os.getpid()))
            time.sleep(600)
        return super().sample(n, generator=generator, batch_size=batch_size)


class MeanReference(MeanModel):
    """A known-answer model from outside genbench: it declares itself a reference."""

    reference = True


class ReportsStepsModel(MeanModel):
    """Reports its steps through progress and returns nothing (as the README once showed)."""

    def fit(self, data, budget, *, seed, progress):
        super().fit(data, budget, seed=seed, progress=progress)


class SilentModel(MeanModel):
    """Neither returns Spent nor reports a step: its steps cannot be known."""

    def fit(self, data, budget, *, seed, progress):
        self.mean = data.train.x.float().mean(0)


class ReturnsIntModel(MeanModel):
    """Returns a bare number instead of Spent."""

    def fit(self, data, budget, *, seed, progress):
        super().fit(data, budget, seed=seed, progress=progress)
        return budget.steps


class ClassBrightnessModel:
    """Class-conditional: sample i is a flat image of brightness 20 * labels[i] + 10 (plus a
    little noise), so a metric can read the class each sample shows from its pixels."""

    def __init__(self, shape, num_classes: int):
        self.shape = tuple(shape)
        self.num_classes = num_classes
        self.fitted = torch.zeros(())

    def fit(self, data, budget, *, seed, progress):
        self.fitted = torch.ones(())
        for step in range(1, budget.steps + 1):
            progress(step, {"loss": 1.0 / step})
        return Spent(steps=budget.steps)

    def sample(self, n, *, labels, generator, batch_size):
        level = (20 * labels + 10).float().view(n, *[1] * len(self.shape))
        noise = torch.randint(-3, 4, (n, *self.shape), generator=generator)
        return (level + noise).clamp(0, 255).to(torch.uint8)

    def state_dict(self):
        return {"fitted": self.fitted}

    def load_state_dict(self, sd):
        self.fitted = sd["fitted"]


class UndeclaredConditional(MeanModel):
    """Sets num_classes without taking it as an __init__ parameter."""

    def __init__(self, shape):
        super().__init__(shape)
        self.num_classes = 10


class PeakModel(MeanModel):
    """Training images shifted in brightness by 40 per step away from step 4: the best model
    is the one of step 4 (in-training evaluation, `keep: best`)."""

    def fit(self, data, budget, *, seed, progress):
        self.train = data.train.x[:500].float()
        for step in range(1, budget.steps + 1):
            self.shift = 40.0 * abs(step - 4)
            progress(step, {"loss": self.shift})
        return Spent(steps=budget.steps)

    def sample(self, n, *, generator, batch_size):
        idx = torch.randint(len(self.train), (n,), generator=generator)
        return (self.train[idx] + self.shift).clamp(0, 255).round().to(torch.uint8)

    def state_dict(self):
        return {"train": self.train, "shift": torch.tensor(self.shift)}

    def load_state_dict(self, sd):
        self.train, self.shift = sd["train"], float(sd["shift"])
