import numpy as np
import pytest
from vendi_score import vendi

from bench.errors import UserError
from bench.metrics.vendi import vendi_score


@pytest.mark.parametrize("n,d", [(200, 16), (20, 64)], ids=["n>d", "n<d"])
def test_equals_vendi_score_package(n, d):
    x = np.random.default_rng(n).standard_normal((n, d)) + 0.4
    expected = vendi.score_X(x)  # cosine kernel (rows normalized), q = 1
    assert 1.5 < expected < n
    assert vendi_score(x) == pytest.approx(expected, rel=1e-9)
    assert vendi_score(x.astype(np.float32)) == pytest.approx(expected, rel=1e-5)


def test_clustered_features_equal_package():
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((4, 10)) * 5
    x = centres[rng.integers(0, 4, 300)] + 0.01 * rng.standard_normal((300, 10))
    assert vendi_score(x) == pytest.approx(vendi.score_X(x), rel=1e-9)
    assert 3.5 < vendi_score(x) < 4.5  # about four effective samples


def test_known_answers():
    assert vendi_score(np.ones((7, 3))) == pytest.approx(1.0, abs=1e-12)
    assert vendi_score(np.eye(6) * 3) == pytest.approx(6.0, rel=1e-12)
    # Scaling rows changes nothing: the kernel is cosine similarity.
    x = np.random.default_rng(1).standard_normal((30, 5))
    scaled = x * np.random.default_rng(2).uniform(0.1, 10, (30, 1))
    assert vendi_score(scaled) == pytest.approx(vendi_score(x), rel=1e-10)


def test_zero_vector_is_user_error():
    x = np.random.default_rng(0).standard_normal((5, 3))
    x[2] = 0
    with pytest.raises(UserError, match="all zero"):
        vendi_score(x)
    with pytest.raises(UserError, match="at least 2 samples"):
        vendi_score(np.ones((1, 3)))
