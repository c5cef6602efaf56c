"""vae's `beta` (beta-VAE) and `encode`: beta=1 trains the plain VAE bit for bit."""

import pytest
import torch

from baselines.vae import VAE
from bench.data import load_dataset
from bench.errors import UserError
from bench.models import Budget

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"z_dim": 4, "width": 8, "batch_size": 16, "device": "cpu"}


def trained(steps: int = 4, **options) -> VAE:
    data = load_dataset("digits")
    model = VAE(data.shape, **TINY, **options)
    model.fit(data, Budget(steps), seed=0, progress=lambda step, m: None)
    return model


def params(model: VAE) -> list[torch.Tensor]:
    return [p.detach().clone() for m in model._modules() for p in m.parameters()]


def test_beta_one_trains_on_the_plain_negative_elbo_bit_for_bit(monkeypatch):
    default = params(trained())
    original = VAE._elbo_terms

    def plain(self, x, noise):  # the plain VAE's objective: -ELBO, no separate KL weight
        rec, kl = original(self, x, noise)
        return rec - kl, torch.zeros_like(kl)

    monkeypatch.setattr(VAE, "_elbo_terms", plain)
    assert all(torch.equal(a, b) for a, b in zip(default, params(trained()), strict=True))


def test_a_larger_beta_trains_other_weights_and_encode_gives_the_posterior_means():
    beta1, beta4 = trained(), trained(beta=4.0)
    assert not all(torch.equal(a, b) for a, b in zip(params(beta1), params(beta4), strict=True))
    x = load_dataset("digits").test.x[:7]
    codes = beta4.encode(x, batch_size=3)
    assert codes.shape == (7, 4) and codes.dtype == torch.float32
    with torch.no_grad():
        mu, _ = beta4._encode(beta4._prepare(x))
    assert torch.allclose(codes, mu, atol=1e-6)


@pytest.mark.parametrize("beta", [0, -1.0])
def test_a_beta_that_is_not_positive_is_refused(beta):
    with pytest.raises(UserError, match="beta must be a positive number"):
        VAE((1, 8, 8), beta=beta, device="cpu")
