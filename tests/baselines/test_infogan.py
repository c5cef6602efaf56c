"""infogan: trains, samples with codes fixed, and round-trips its checkpoint."""

import pytest
import torch

from baselines.infogan import InfoGAN
from bench.data import load_dataset
from bench.errors import UserError
from bench.models import Budget

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"z_dim": 8, "categories": 4, "continuous": 2, "width": 8, "batch_size": 16}


@pytest.fixture(scope="module")
def model():
    data = load_dataset("digits")
    m = InfoGAN(data.shape, device="cpu", **TINY)
    losses = []
    m.fit(data, Budget(5), seed=0, progress=lambda step, logged: losses.append(logged))
    assert len(losses) == 5 and {"loss_info_cat", "loss_info_cont"} <= set(losses[0])
    return m


def draw(m, **codes):
    return m.sample_with_codes(6, generator=torch.Generator().manual_seed(1), **codes)


def test_samples_are_images_and_fixed_codes_are_used(model):
    x = model.sample(5, generator=torch.Generator().manual_seed(0), batch_size=2)
    assert x.shape == (5, 1, 8, 8) and x.dtype == torch.uint8
    zeros, threes = torch.zeros(6, dtype=torch.long), torch.full((6,), 3)
    assert torch.equal(draw(model, categorical=zeros), draw(model, categorical=zeros))
    assert not torch.equal(draw(model, categorical=zeros), draw(model, categorical=threes))
    low, high = torch.full((6, 2), -1.0), torch.full((6, 2), 1.0)
    assert not torch.equal(
        draw(model, categorical=zeros, continuous=low),
        draw(model, categorical=zeros, continuous=high),
    )
    assert model.categorical_codes == 4 and model.continuous_codes == 2


def test_checkpoint_round_trip_gives_the_same_samples(model):
    again = InfoGAN((1, 8, 8), device="cpu", **TINY)
    again.load_state_dict(model.state_dict())
    assert torch.equal(
        draw(again, categorical=torch.ones(6, dtype=torch.long)),
        draw(model, categorical=torch.ones(6, dtype=torch.long)),
    )


def test_points_and_empty_codes_are_refused():
    with pytest.raises(UserError, match="images only"):
        InfoGAN((2,), "points", device="cpu")
    with pytest.raises(UserError, match="categories must be at least 1"):
        InfoGAN((1, 8, 8), device="cpu", categories=0)
