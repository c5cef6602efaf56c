"""infogan: trains, samples with codes fixed, and round-trips its checkpoint."""

import math

import pytest
import torch

from baselines.infogan import InfoGAN, cluster_loss, shift_one_pixel
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
    with pytest.raises(UserError, match="at least 0, got lambda_aug -1"):
        InfoGAN((1, 8, 8), device="cpu", lambda_aug=-1.0)
    with pytest.raises(UserError, match="at least 0, got balance -2"):
        InfoGAN((1, 8, 8), device="cpu", balance=-2.0)


def test_cluster_loss_is_minus_log_k_when_confident_and_balanced_and_zero_when_uniform():
    confident = 50.0 * torch.eye(4).repeat(3, 1)  # 12 images, 3 per value, sure of it
    assert cluster_loss(confident).item() == pytest.approx(-math.log(4), abs=1e-6)
    assert cluster_loss(torch.zeros(12, 4)).item() == pytest.approx(0.0, abs=1e-6)
    # confident but all in one value: no information either
    assert cluster_loss(50.0 * torch.eye(4)[[1] * 12]).item() == pytest.approx(0.0, abs=1e-6)
    # closed form on a small case: q = (0.9, 0.1) and (0.1, 0.9)
    logits = torch.tensor([[0.9, 0.1], [0.1, 0.9]]).log()
    h_each = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert cluster_loss(logits).item() == pytest.approx(h_each - math.log(2), abs=1e-6)
    # balance weighs only the batch's entropy (IMSAT's mu)
    assert cluster_loss(logits, 4.0).item() == pytest.approx(h_each - 4 * math.log(2), abs=1e-6)
    assert cluster_loss(confident, 4.0).item() == pytest.approx(-4 * math.log(4), abs=1e-6)
    assert cluster_loss(50.0 * torch.eye(4)[[1] * 12], 4.0).item() == pytest.approx(0.0, abs=1e-6)


def test_shift_one_pixel_moves_each_image_by_at_most_a_pixel_and_fills_with_background():
    x = torch.full((200, 1, 6, 6), -1.0)
    x[:, 0, 2:4, 2:4] = torch.linspace(0.0, 1.0, 200)[:, None, None]  # away from the edge
    moved = shift_one_pixel(x, torch.Generator().manual_seed(0))
    seen = set()
    for before, after in zip(x, moved, strict=True):
        shifts = [
            (dy, dx)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if torch.equal(after, torch.roll(before, (dy, dx), dims=(1, 2)))
        ]
        assert len(shifts) == 1
        seen.add(shifts[0])
    assert len(seen) == 9
    edge = shift_one_pixel(torch.ones(50, 2, 4, 4), torch.Generator().manual_seed(1))
    assert set(edge.unique().tolist()) <= {-1.0, 1.0}
    assert (edge == -1.0).any() and (edge == 1.0).sum(dim=(1, 2, 3)).min() >= 2 * 9


def fit_one_step(**options):
    data = load_dataset("digits")
    m = InfoGAN(data.shape, device="cpu", **TINY, **options)
    logged = []
    m.fit(data, Budget(1), seed=0, progress=lambda step, row: logged.append(row))
    return m, logged[0]


def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_q_clusters_real_images_only_when_asked_and_the_discriminator_never():
    paper, paper_log = fit_one_step()
    assert not {"loss_info_real", "loss_info_shift"} & set(paper_log)
    real, real_log = fit_one_step(lambda_real=2.0, lambda_aug=8.0)
    assert real_log["loss_info_real"] >= -4 * math.log(4) - 1e-6
    assert real_log["loss_info_shift"] >= 0
    # the terms are not in the discriminator's loss (its first update is the paper's)
    assert same(paper.D, real.D) and not same(paper.Q, real.Q)
    # the balance (IMSAT's mu, default 4) weighs the batch's entropy: RIM's 1 weighs it less
    rim, rim_log = fit_one_step(lambda_real=2.0, lambda_aug=8.0, balance=1.0)
    assert -math.log(4) - 1e-6 <= rim_log["loss_info_real"]
    assert real_log["loss_info_real"] < rim_log["loss_info_real"]
    assert same(real.D, rim.D) and not same(real.Q, rim.Q)
    # without the clustering term the balance has nothing to weigh
    assert same(paper.Q, fit_one_step(balance=1.0)[0].Q)
