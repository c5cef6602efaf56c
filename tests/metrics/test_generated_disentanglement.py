"""MIG and DCI of a generator's codes against the factors read off its samples
(mig_generated, dci_generated) and the shapes factor reader they use."""

import math

import numpy as np
import pytest
import torch
from test_disentanglement import (
    lib_completeness,
    lib_compute_importance_gbt,
    lib_disentanglement,
    lib_mig,
)

from bench.data import load_dataset
from bench.data.shapes import FACTOR_SIZES, all_factors, draw
from bench.errors import UserError
from bench.features.factor_reader import FactorReader
from bench.metrics import fits_data
from bench.metrics.dci_generated import score_dci_generated
from bench.metrics.mig_generated import draw_codes, score_mig_generated
from bench.scoring import ScoringContext


@pytest.fixture(scope="module")
def shapes():
    return load_dataset("shapes")


def to_indices(continuous: torch.Tensor) -> torch.Tensor:
    """Codes in [0, 1) -> the index of the factor cell each falls in (scale .. y)."""
    sizes = torch.tensor(FACTOR_SIZES[1:])
    return torch.minimum((continuous * sizes).long(), sizes - 1)


class OracleGenerator:
    """Its codes are the true factors: the categorical code is the shape, the four
    continuous codes in [0, 1) pick scale, orientation, x and y; the image is the shapes
    drawing of those factors."""

    categorical_codes, continuous_codes, continuous_range = 3, 4, (0.0, 1.0)

    def factors(self, categorical, continuous) -> np.ndarray:
        return torch.cat([categorical[:, None], to_indices(continuous)], 1).numpy()

    def sample_with_codes(self, n, *, categorical=None, continuous=None, generator, batch_size):
        if categorical is None:
            categorical = torch.randint(3, (n,), generator=generator)
        if continuous is None:
            continuous = torch.rand((n, 4), generator=generator)
        images = [torch.from_numpy(draw(tuple(f))) for f in self.factors(categorical, continuous)]
        return torch.stack(images)[:, None]


class IgnoringGenerator(OracleGenerator):
    """Draws shapes images of factors it draws itself, whatever codes it is given."""

    def sample_with_codes(self, n, *, categorical=None, continuous=None, generator, batch_size):
        own = torch.Generator().manual_seed(12345)
        return super().sample_with_codes(n, generator=own, batch_size=batch_size)


def context(data, model, n: int) -> ScoringContext:
    return ScoringContext(data, torch.zeros((n, 1, 28, 28), dtype=torch.uint8), "cpu", model=model)


def oracle_codes_and_factors(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The codes the metrics draw for the oracle (seed 0) and the oracle's true factors."""
    oracle = OracleGenerator()
    codes = draw_codes(oracle, n, torch.Generator().manual_seed(0))
    true = oracle.factors(codes["categorical"], codes["continuous"])
    as_array = torch.cat([codes["categorical"][:, None].double(), codes["continuous"].double()], 1)
    return as_array.numpy(), true


def population_oracle_mig() -> float:
    """The oracle's MIG with infinitely many samples: a uniform code's 20 equal-width bins
    split 2 of 3 cells of a 3-valued factor's boundaries and 4 of a 6-valued one's (bins
    1/3 : 2/3 across the boundary), which leaves H(factor | bin) = (split bins / 20) *
    H(1/3, 2/3); the categorical code (the shape) reads its factor exactly."""
    h_split = -(1 / 3) * math.log(1 / 3) - (2 / 3) * math.log(2 / 3)
    scale = 1 - (2 / 20) * h_split / math.log(3)
    six = 1 - (4 / 20) * h_split / math.log(6)
    return (1 + scale + 3 * six) / 5


def test_the_factor_reader_reads_every_shapes_image_exactly(shapes):
    reader = FactorReader(shapes)
    for split in ("train", "test"):
        read = reader.read(getattr(shapes, split).x)
        assert (read == shapes.meta[f"factors_{split}"]).all(axis=0).all()
    grid = all_factors()[::7]
    images = torch.stack([torch.from_numpy(draw(tuple(f))) for f in grid])[:, None]
    np.testing.assert_array_equal(reader.read(images), grid)


def test_the_factor_reader_reads_noisy_images_and_refuses_datasets_without_a_grid(shapes):
    reader = FactorReader(shapes)
    x = shapes.test.x.double()
    noisy = (x + 40 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(
        0, 255
    )
    np.testing.assert_array_equal(
        reader.read(noisy.round().to(torch.uint8)), shapes.meta["factors_test"]
    )
    with pytest.raises(UserError, match="no factor reader for 'digits'"):
        FactorReader(load_dataset("digits"))


def test_population_oracle_mig_value():
    assert population_oracle_mig() == pytest.approx(0.9458, abs=1e-4)


def test_a_generator_whose_codes_are_the_factors_scores_the_oracle_value(shapes):
    n = 2000
    mig = score_mig_generated(context(shapes, OracleGenerator(), n))
    # the reader is exact, so all that is lost is the bins' misalignment (plus the
    # finite-sample bias of the plug-in mutual information, about 0.01 at n = 2000)
    assert mig["mig_generated_bins20_n2000"] == pytest.approx(population_oracle_mig(), abs=0.02)
    dci = score_dci_generated(context(shapes, OracleGenerator(), n))
    assert dci["dci_generated_informativeness_n2000"] > 0.98
    assert dci["dci_generated_disentanglement_n2000"] > 0.99
    assert dci["dci_generated_completeness_n2000"] > 0.99


def test_a_generator_that_ignores_its_codes_scores_near_zero(shapes):
    n = 1000
    mig = score_mig_generated(context(shapes, IgnoringGenerator(), n))
    assert 0 <= mig["mig_generated_bins20_n1000"] < 0.03
    dci = score_dci_generated(context(shapes, IgnoringGenerator(), n))
    # the classifiers learn nothing that carries over: about the largest class's share
    # (mean over factors about 0.23); no code is important for one factor in particular
    assert dci["dci_generated_informativeness_n1000"] < 0.3
    assert dci["dci_generated_disentanglement_n1000"] < 0.1


def test_the_scores_equal_the_disentanglement_lib_transcription_on_the_same_arrays(shapes):
    n = 500
    codes, factors = oracle_codes_and_factors(n)
    mig = score_mig_generated(context(shapes, OracleGenerator(), n))
    assert mig["mig_generated_bins20_n500"] == pytest.approx(lib_mig(codes.T, factors.T), abs=1e-6)
    cut = n - n // 5
    r, _, test_acc = lib_compute_importance_gbt(
        codes[:cut].T, factors[:cut].T, codes[cut:].T, factors[cut:].T
    )
    dci = score_dci_generated(context(shapes, OracleGenerator(), n))
    assert dci == pytest.approx(
        {
            "dci_generated_disentanglement_n500": lib_disentanglement(r),
            "dci_generated_completeness_n500": lib_completeness(r),
            "dci_generated_informativeness_n500": test_acc,
        },
        abs=1e-6,
    )


class OneCode(OracleGenerator):
    continuous_codes = 0


class ConstantGenerator(OracleGenerator):
    """One image whatever the codes: every read factor is constant."""

    def sample_with_codes(self, n, *, categorical=None, continuous=None, generator, batch_size):
        return torch.from_numpy(draw((0, 0, 0, 0, 0)))[None, None].expand(n, 1, 28, 28)


def test_models_without_codes_skip_and_degenerate_samples_score_zero(shapes):
    for model in (object(), OneCode()):
        assert score_mig_generated(context(shapes, model, 50)) == {}
    assert score_dci_generated(context(shapes, object(), 50)) == {}
    assert score_mig_generated(context(shapes, ConstantGenerator(), 50)) == {
        "mig_generated_bins20_n50": 0.0
    }
    dci = score_dci_generated(context(shapes, ConstantGenerator(), 50))
    assert dci["dci_generated_informativeness_n50"] == 1.0
    assert dci["dci_generated_disentanglement_n50"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("metric", ["mig_generated", "dci_generated"])
def test_the_generated_scores_refuse_a_dataset_without_factors(metric):
    with pytest.raises(UserError, match="needs a dataset with known generating factors"):
        fits_data(metric, {"images", "model", "factors"}, load_dataset("digits"))
