"""The SGD-family, random and joint baselines on split-digits behave as the paper's references."""

import numpy as np
import pytest

from dwa_core import ExperimentConfig, TrainConfig, run_experiment

# A small MLP at a high constant rate: enough drift in the shared layers for sgd to forget.
CFG = ExperimentConfig(train=TrainConfig(epochs=50, lr=0.1, lr_schedule="original-code"),
                       network_params={"hidden": 20, "layers": 3, "dropout": 0.0})


@pytest.fixture(scope="module")
def acc():
    return {name: run_experiment(CFG.replace(approach=name), save=False).acc_matrix()
            for name in ("sgd", "sgd-frozen", "sgd-restart", "random", "joint")}


def test_sgd_forgets_the_first_task(acc):
    a = acc["sgd"]
    assert a[0, 0] > 0.95
    assert a[-1, 0] < a[0, 0] - 0.05


def test_sgd_frozen_keeps_every_earlier_task_exactly(acc):
    a = acc["sgd-frozen"]
    for t in range(1, 5):
        np.testing.assert_array_equal(a[t, :t], a[t - 1, :t])


def test_sgd_restart_is_one_model_per_task(acc):
    a = acc["sgd-restart"]
    for t in range(1, 5):
        np.testing.assert_array_equal(a[t, :t], a[t - 1, :t])  # old tasks keep their own model
    assert np.diag(a).min() > 0.9


def test_joint_stays_near_its_diagonal(acc):
    a = acc["joint"]
    for t in range(5):
        assert a[t, : t + 1].min() > 0.9


def test_random_sits_near_chance(acc):
    a = acc["random"]
    lower = np.tril(np.ones_like(a, dtype=bool))
    assert abs(a[lower].mean() - 0.5) < 0.08  # 2 classes per task


def test_sgd_forgets_more_than_the_references(acc):
    from dwa_core import metrics

    assert metrics.forgetting(acc["sgd"]) > metrics.forgetting(acc["joint"]) + 0.03
