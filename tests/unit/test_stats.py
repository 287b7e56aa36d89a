import numpy as np
import pytest

from embedlens.evaluation.stats import paired_uplift


def test_clear_uplift_is_significant() -> None:
    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 0.5, 200)
    u = paired_uplift(raw, raw + 0.2 + rng.normal(0, 0.01, 200))
    assert u.significant and u.ci95[0] > 0.15 and u.p_value < 0.01
    assert u.delta == pytest.approx(0.2, abs=0.01)


def test_noise_is_not_significant() -> None:
    rng = np.random.default_rng(1)
    raw = rng.uniform(0, 1, 100)
    u = paired_uplift(raw, raw + rng.normal(0, 0.1, 100))
    assert not u.significant and u.ci95[0] < 0 < u.ci95[1]


def test_identical_is_p_one() -> None:
    x = np.linspace(0, 1, 10)
    u = paired_uplift(x, x)
    assert u.delta == 0 and u.p_value == 1.0 and not u.significant


def test_shape_mismatch_named() -> None:
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        paired_uplift(np.zeros(3), np.zeros(4))
