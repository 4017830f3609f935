"""metrics.mean_ci: the Student-t interval of the mean with the sample standard deviation
(issue 12: it used ddof=0, which made every n=3 interval 0.816 of the right width). Expected
values come from scipy.stats.t.interval and from t tables, never from mean_ci itself."""

import numpy as np
import pytest
from scipy import stats

from dwa_core import metrics

CASES = [
    [0.90, 1.00],  # n = 2: t_{0.975, 1} = 12.706
    [0.914, 0.927, 0.901],  # n = 3 (seeds 0-2, as the README tables)
    [1.0, 2.0, 3.0, 4.0, 5.0],  # n = 5
    [0.5, 0.52, 0.49, 0.61, 0.55, 0.47, 0.58],  # n = 7
]


@pytest.mark.parametrize("values", CASES, ids=lambda v: f"n={len(v)}")
@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_half_width_matches_scipy_t_interval(values, confidence):
    mean = np.mean(values)
    low, high = stats.t.interval(confidence, len(values) - 1, loc=mean,
                                 scale=np.std(values, ddof=1) / np.sqrt(len(values)))
    got_mean, half = metrics.mean_ci(values, confidence)
    assert got_mean == pytest.approx(mean)
    assert half == pytest.approx((high - low) / 2, rel=1e-12)


def test_hand_values_from_t_tables():
    # n = 2: mean 0.95, s = 0.0707107, s/sqrt(2) = 0.05; t_{0.975, 1} = 12.7062047
    assert metrics.mean_ci([0.9, 1.0])[1] == pytest.approx(12.7062047 * 0.05, rel=1e-6)
    # n = 5: s = sqrt(2.5), s/sqrt(5) = sqrt(0.5); t_{0.975, 4} = 2.7764451
    assert metrics.mean_ci([1, 2, 3, 4, 5])[1] == pytest.approx(2.7764451 * np.sqrt(0.5), rel=1e-6)


def test_old_population_std_interval_was_narrower_by_sqrt_of_n_minus_1_over_n():
    values = CASES[1]
    old = stats.t.ppf(0.975, 2) * np.std(values) / np.sqrt(3)  # the ddof=0 formula of the fault
    assert old / metrics.mean_ci(values)[1] == pytest.approx(np.sqrt(2 / 3))  # 0.816


def test_degenerate_inputs():
    assert metrics.mean_ci([0.4]) == (0.4, 0.0)
    assert metrics.mean_ci([0.7, 0.7, 0.7]) == (pytest.approx(0.7), 0.0)
    with pytest.raises(ValueError, match="no values"):
        metrics.mean_ci([])
    with pytest.raises(ValueError, match="confidence"):
        metrics.mean_ci([1, 2], confidence=95)
