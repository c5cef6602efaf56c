"""The translation families keep the contract: a few steps of fit, translations of the
target's shape in uint8, deterministic given their input, and a checkpoint round trip."""

import pytest
import torch

from bench.data import load_dataset
from bench.models import Budget, build_model, resolve_model
from bench.translation import source


def fitted(name: str, task_name: str, steps: int = 3):
    task = load_dataset(task_name)
    model = build_model(resolve_model(name), task, {"batch_size": 4, "width": 8})
    seen = []
    spent = model.fit(task, Budget(steps), seed=0, progress=lambda s, v: seen.append(v["loss"]))
    assert spent.steps == steps and len(seen) == steps
    return task, model


@pytest.mark.parametrize(
    "name, task_name", [("pix2pix", "edges2mnist"), ("cyclegan", "digits2mnist")]
)
def test_translations_are_uint8_of_the_target_shape_and_reload(name, task_name):
    task, model = fitted(name, task_name)
    x = source(task).test.x[:5]
    g = torch.Generator().manual_seed(0)
    out = model.translate(x.clone(), generator=g, batch_size=2)
    assert out.dtype == torch.uint8 and tuple(out.shape) == (5, *task.shape)
    torch.testing.assert_close(out, model.translate(x.clone(), generator=g, batch_size=5))
    again = build_model(resolve_model(name), task, {"batch_size": 4, "width": 8})
    again.load_state_dict(model.state_dict())
    torch.testing.assert_close(again.translate(x.clone(), generator=g, batch_size=5), out)


def test_cyclegan_translates_back_to_the_source_domain():
    task, model = fitted("cyclegan", "digits2mnist")
    x = task.test.x[:3]
    back = model.translate_back(x, generator=torch.Generator(), batch_size=3)
    assert back.dtype == torch.uint8 and tuple(back.shape) == (3, *source(task).shape)


def test_cyclegan_image_pool_returns_stored_fakes_once_full():
    from baselines.cyclegan import ImagePool

    pool = ImagePool(2, torch.Generator().manual_seed(0))
    first = torch.zeros(2, 1, 2, 2)
    torch.testing.assert_close(pool.query(first), first)  # filling: the new ones
    later = [pool.query(torch.ones(1, 1, 2, 2)) for _ in range(20)]
    assert any(float(x.max()) == 0 for x in later)  # some answers are stored older fakes
    assert any(float(x.min()) == 1 for x in later)  # and some the new one


def test_cyclegan_weights_depend_on_the_seed_alone():
    task = load_dataset("digits2mnist")
    states = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        model = build_model(resolve_model("cyclegan"), task, {"width": 8})
        states.append(model.state_dict())
    for key in ("G_ab", "D_b"):
        for name, value in states[0][key].items():
            torch.testing.assert_close(value, states[1][key][name])
