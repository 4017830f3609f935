"""Every metric against a 3-task example worked out by hand (values in the comments)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from dwa_core import metrics

ACC = [[0.9, 0, 0], [0.6, 0.8, 0], [0.5, 0.7, 0.9]]
RANDOM = [[0.5, 0, 0], [0.5, 0.5, 0], [0.4, 0.5, 0.5]]
JOINT = [[0.9, 0, 0], [0.9, 0.8, 0], [0.9, 0.9, 0.9]]


def test_average_accuracy():
    assert metrics.average_accuracy(ACC) == pytest.approx(0.7)  # (0.5 + 0.7 + 0.9) / 3
    assert metrics.average_accuracy(ACC, t=1) == pytest.approx(0.7)  # (0.6 + 0.8) / 2
    assert_allclose(metrics.average_accuracy_curve(ACC), [0.9, 0.7, 0.7])


def test_backward_transfer():
    assert metrics.backward_transfer(ACC) == pytest.approx(-0.25)  # ((.5-.9) + (.7-.8)) / 2


def test_forgetting_is_max_based():
    # u=0: max(0.9, 0.6) - 0.5 = 0.4; u=1: 0.8 - 0.7 = 0.1
    assert metrics.forgetting(ACC) == pytest.approx(0.25)
    # the reference is the best accuracy before the last task, not the diagonal:
    # u=0: max(0.5, 0.9) - 0.6 = 0.3; u=1: 1 - 1 = 0
    assert metrics.forgetting([[0.5, 0, 0], [0.9, 1, 0], [0.6, 1, 1]]) == pytest.approx(0.15)
    assert metrics.forgetting([[0.5, 0], [0.9, 1.0]]) == pytest.approx(-0.4)  # improved: negative


def test_hat_forgetting_ratio():
    # rho_t = mean_{u<=t} (A - R_uu) / (J - R_uu) - 1 with R's diagonal (all 0.5)
    # t=0: 0; t=1: mean(-0.75, 0) ; t=2: mean(-1, -0.5, 0)
    assert_allclose(metrics.forgetting_ratio(ACC, RANDOM, JOINT), [0.0, -0.375, -0.5])
    assert_allclose(metrics.forgetting_ratio(JOINT, RANDOM, JOINT), [0, 0, 0])


def test_retention_ratio_is_the_papers_fig6_definition():
    # FR_1 = (0.6-0.5)/(0.9-0.5) = 0.25; FR_2 = mean((0.5-0.4)/(0.9-0.4), (0.7-0.5)/(0.9-0.5)) = 0.35
    out = metrics.retention_ratio(ACC, RANDOM, JOINT)
    assert np.isnan(out[0])
    assert_allclose(out[1:], [0.25, 0.35])
    assert metrics.percent_forgotten(ACC, RANDOM, JOINT) == pytest.approx(70.0)


def test_simple_retention_ratio():
    out = metrics.simple_retention_ratio(ACC)
    assert_allclose(out[1:], [0.6 / 0.9, (0.5 / 0.9 + 0.7 / 0.8) / 2])


def test_mean_ci_student_t_with_sample_std():
    mean, half = metrics.mean_ci([1.0, 2.0, 3.0])
    # t_{0.975, 2} = 4.302652729911275 (tables); sample std (ddof=1) of 1, 2, 3 = 1
    assert mean == pytest.approx(2.0)
    assert half == pytest.approx(4.302652729911275 * 1.0 / np.sqrt(3))
    assert metrics.mean_ci([0.4]) == (0.4, 0.0)


def test_non_square_matrix_is_rejected():
    with pytest.raises(ValueError, match="square"):
        metrics.average_accuracy([[1, 0, 0], [1, 1, 0]])
