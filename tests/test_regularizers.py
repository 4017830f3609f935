"""The pure maths of EWC, LwF, LFL and IMM against values computed by hand on tiny tensors."""

import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from dwa_core.functional.fisher import fisher_diagonal, iterate_batches, merge_fisher, sum_fisher
from dwa_core.functional.regularizers import (
    distillation_ce,
    ewc_penalty,
    feature_penalty,
    l2_transfer,
    mean_merge,
    mode_merge,
)

T = torch.tensor


def tiny_linear():
    """y_hat = w * x with w = 1; a frozen bias (no gradient)."""
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.zero_()
    model.bias.requires_grad_(False)
    return model


# Two batches: x = [1, 2], y = [0, 0] and x = [3], y = [1]. Loss: mean squared error.
X, Y = T([[1.0], [2.0], [3.0]]), T([[0.0], [0.0], [1.0]])
# dL/dw = mean(2 (w x - y) x): batch 1: mean(2*1*1, 2*2*2) = 5; batch 2: 2*2*3 = 12.


def fisher_of(model, **kwargs):
    def loss_fn(x, y):
        return ((model(x) - y) ** 2).mean()
    return fisher_diagonal(model, iterate_batches(X, Y, 2), loss_fn, **kwargs)


def test_fisher_is_the_batch_weighted_mean_of_squared_gradients():
    fisher = fisher_of(tiny_linear())
    assert_close(fisher["weight"], T([[(2 * 5**2 + 1 * 12**2) / 3]]))
    assert_close(fisher["bias"], T([0.0]))  # frozen: no gradient, zero Fisher


def test_fisher_nominal_batch_size_weighs_the_last_partial_batch_like_the_others():
    fisher = fisher_of(tiny_linear(), nominal_batch_size=2)
    assert_close(fisher["weight"], T([[(2 * 5**2 + 2 * 12**2) / 3]]))


def test_fisher_accumulated_gradients_reproduce_the_seed_bug():
    fisher = fisher_of(tiny_linear(), accumulate_gradients=True)
    # The second batch sees the sum of both gradients: 5 + 12 = 17.
    assert_close(fisher["weight"], T([[(2 * 5**2 + 1 * 17**2) / 3]]))
    assert not torch.equal(fisher["weight"], fisher_of(tiny_linear())["weight"])


def test_fisher_runs_in_train_mode_and_restores_the_mode_and_clears_gradients():
    model, modes = tiny_linear().eval(), []

    def loss_fn(x, y):
        modes.append(model.training)
        return model(x).sum()
    fisher_diagonal(model, iterate_batches(X, Y, 2), loss_fn)
    assert modes == [True, True] and not model.training and model.weight.grad is None
    fisher_diagonal(model, iterate_batches(X, Y, 2), loss_fn, train_mode=False)
    assert modes[-2:] == [False, False]


def test_merge_fisher_is_a_running_mean_over_tasks():
    old, new = {"a": T([2.0, 4.0])}, {"a": T([5.0, 1.0])}
    assert_close(merge_fisher(None, new, 0)["a"], T([5.0, 1.0]))
    assert_close(merge_fisher(old, new, 1)["a"], T([3.5, 2.5]))  # (new + old) / 2
    assert_close(merge_fisher(old, new, 2)["a"], T([3.0, 3.0]))  # (new + 2 old) / 3
    assert_close(sum_fisher(old, new)["a"], T([7.0, 5.0]))


PARAMS = {"w": T([1.0, 2.0]), "b": T([3.0])}
ANCHOR = {"w": T([0.0, 1.0]), "b": T([1.0])}


def test_ewc_penalty_by_hand():
    fisher = {"w": T([2.0, 3.0]), "b": T([0.5])}
    # 1/2 (2 * 1^2 + 3 * 1^2 + 0.5 * 2^2) = 3.5
    assert_close(ewc_penalty(PARAMS.items(), ANCHOR, fisher), T(3.5))
    assert_close(ewc_penalty(PARAMS.items(), PARAMS, fisher), T(0.0))


def test_l2_transfer_by_hand():
    assert_close(l2_transfer(PARAMS.items(), ANCHOR), T(3.0))  # 1/2 (1 + 1 + 4)


def test_ewc_penalty_gradient_is_fisher_times_distance():
    w = T([1.0, 2.0], requires_grad=True)
    ewc_penalty([("w", w)], {"w": T([0.0, 0.0])}, {"w": T([2.0, 3.0])}).backward()
    assert_close(w.grad, T([2.0, 6.0]))


def ce(p_teacher, p_student):
    return -sum(a * math.log(b) for a, b in zip(p_teacher, p_student))


def sharpen(p, temperature):
    """The original code's form: p ** (1/T), renormalised."""
    q = [v ** (1 / temperature) for v in p]
    return [v / sum(q) for v in q]


@pytest.mark.parametrize("temperature", [1.0, 2.0, 0.5])
def test_distillation_ce_by_hand(temperature):
    teacher = T([[0.0, math.log(3.0)], [0.0, 0.0]])  # softmax rows: [1/4, 3/4], [1/2, 1/2]
    student = T([[0.0, math.log(2.0)], [1.0, 1.0]])  # [1/3, 2/3], [1/2, 1/2]
    row1 = ce(sharpen([0.25, 0.75], temperature), sharpen([1 / 3, 2 / 3], temperature))
    row2 = math.log(2.0)
    got = distillation_ce(student, teacher, temperature, eps=0.0)
    assert_close(got, T((row1 + row2) / 2))


def test_distillation_ce_eps_smooths_the_student():
    teacher, student = T([[0.0, math.log(3.0)]]), T([[0.0, math.log(2.0)]])
    eps = 0.1  # adds eps / 2 to each class, then renormalises by 1 + eps
    smoothed = [(1 / 3 + 0.05) / 1.1, (2 / 3 + 0.05) / 1.1]
    assert_close(distillation_ce(student, teacher, 1.0, eps), T(ce([0.25, 0.75], smoothed)))


def test_distillation_is_smallest_when_the_student_matches_the_teacher():
    teacher = T([[0.3, -1.0, 2.0]])
    same = distillation_ce(teacher, teacher, eps=0.0)
    entropy = -(teacher.softmax(1) * teacher.log_softmax(1)).sum()
    assert_close(same, entropy)
    assert distillation_ce(T([[2.0, 0.0, -1.0]]), teacher, eps=0.0) > same


def test_feature_penalty_sums_units_and_averages_or_sums_the_batch():
    h, h_old = T([[1.0, 2.0], [0.0, 0.0]]), T([[0.0, 0.0], [1.0, 1.0]])
    # per sample: 1/2 (1 + 4) = 2.5 and 1/2 (1 + 1) = 1
    assert_close(feature_penalty(h, h_old), T(1.75))  # default: batch mean (2.5 + 1) / 2
    assert_close(feature_penalty(h, h_old, "sum"), T(3.5))  # the original code: 1/2 (1 + 4 + 1 + 1)
    assert_close(feature_penalty(h_old, h, "sum"), T(3.5))  # symmetric


def test_feature_penalty_is_zero_at_no_drift_and_rejects_unknown_reductions():
    h = T([[0.5, 3.0, 0.0]])
    assert feature_penalty(h, h.clone()).item() == 0.0
    assert_close(feature_penalty(h, T([[0.5, 1.0, 0.0]])), T(2.0))  # 1/2 * 2^2
    with pytest.raises(ValueError):
        feature_penalty(h, h, "max")


def test_feature_penalty_gradient_is_h_minus_h_old_over_the_batch():
    h = T([[1.0, 2.0], [0.0, 0.0]], requires_grad=True)
    h_old = T([[0.0, 0.0], [1.0, 1.0]])
    feature_penalty(h, h_old).backward()
    assert_close(h.grad, T([[0.5, 1.0], [-0.5, -0.5]]))  # (h - h_old) / B, B = 2


def test_mean_merge_is_a_running_mean():
    assert_close(mean_merge({"a": T([4.0])}, {"a": T([1.0])}, 1)["a"], T([2.5]))
    assert_close(mean_merge({"a": T([4.0])}, {"a": T([1.0])}, 2)["a"], T([2.0]))  # (4 + 2) / 3


def test_mode_merge_weighs_each_entry_by_its_fisher():
    current, old = {"a": T([4.0, 4.0, 4.0])}, {"a": T([1.0, 1.0, 1.0])}
    f_new, f_old = {"a": T([3.0, 0.0, 0.0])}, {"a": T([1.0, 2.0, 0.0])}
    # (3*4 + 1*1)/4 = 3.25; F_new = 0 keeps the old value; no Fisher at all gives the mean.
    assert_close(mode_merge(current, old, f_new, f_old)["a"], T([3.25, 1.0, 2.5]))
