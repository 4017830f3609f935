"""The faults that made numbers untrustworthy (prefix runs, Fisher estimates, recorded losses, HAT's
full network), each checked against a value computed here by hand or by an independent route."""

import math

import pytest
import torch
import torch.nn.functional as F

from dwa_core import approaches, data, models
from dwa_core.approaches import ewc as ewc_module
from dwa_core.config import ExperimentConfig, TrainConfig
from dwa_core.experiment import build_approach, run_experiment, validate
from dwa_core.functional.fisher import combine_fisher
from dwa_core.functional.hat import mask_regularizer

FAST = {"pathnet": {"generations": 1}, "dwa": {"anchor_samples": 8}}


def _names():
    return [n for n in approaches.names() if not n.startswith("test-")]


def _tiny(name: str, max_tasks: int | None, **changes) -> ExperimentConfig:
    return ExperimentConfig(benchmark="split-digits", approach=name, max_tasks=max_tasks, device="cpu",
                            benchmark_params={"per_class": 10}, network_params={"hidden": 12},
                            approach_params=FAST.get(name, {}),
                            train=TrainConfig(epochs=2, batch_size=16, lr=0.05), **changes)


# ---- --max-tasks N is the first N rows of the full run ------------------------------------------
@pytest.mark.parametrize("name", _names())
def test_max_tasks_run_is_a_prefix_of_the_longer_run(name):
    short = run_experiment(_tiny(name, 2), save=False)
    longer = run_experiment(_tiny(name, 3), save=False)
    assert short.n_tasks == 2 and longer.n_tasks == 3
    for t in range(2):
        assert short.acc[t][: t + 1] == longer.acc[t][: t + 1], f"{name}: acc row {t} differs"
        assert short.loss[t][: t + 1] == longer.loss[t][: t + 1], f"{name}: loss row {t} differs"


@pytest.mark.parametrize("arch,family", [("mlp", "plain"), ("mlp", "hat"), ("mlp", "dwa"),
                                         ("mlp", "progressive"), ("mlp", "pathnet")])
def test_trunk_weights_do_not_depend_on_the_number_of_heads(arch, family):
    few = models.build(arch, family, (1, 8, 8), [2, 2], {"hidden": 16}, seed=3).state_dict()
    many = models.build(arch, family, (1, 8, 8), [2] * 5, {"hidden": 16}, seed=3).state_dict()
    for key, value in few.items():
        other = many[key]
        if other.shape != value.shape:  # a (T, units) task embedding: the first rows
            other = other[: value.shape[0]]
        assert torch.equal(value, other), key


def test_build_leaves_the_global_random_state_alone():
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    models.build("mlp", "hat", (1, 8, 8), [2] * 4, {"hidden": 16}, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_another_seed_gives_other_weights():
    a = models.build("mlp", "plain", (1, 8, 8), [2], {"hidden": 16}, seed=0).state_dict()
    b = models.build("mlp", "plain", (1, 8, 8), [2], {"hidden": 16}, seed=1).state_dict()
    assert not torch.equal(a["features.1.weight"], b["features.1.weight"])


# ---- EWC: one penalty per old task --------------------------------------------------------------
def test_combine_fisher_sums_or_averages_by_hand():
    old, new = {"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([3.0, 4.0])}
    assert torch.equal(combine_fisher(old, new, 1, "sum")["w"], torch.tensor([4.0, 6.0]))
    assert torch.equal(combine_fisher(old, new, 1, "mean")["w"], torch.tensor([2.0, 3.0]))
    assert torch.equal(combine_fisher(None, new, 0, "sum")["w"], new["w"])
    with pytest.raises(ValueError):
        combine_fisher(old, new, 1, "max")


@pytest.fixture(scope="module")
def bench():
    return data.load_benchmark(_tiny("sgd", 3), torch.device("cpu"))


def _approach(name, bench, **params):
    cfg = _tiny(name, 3).replace(approach_params={**FAST.get(name, {}), **params})
    return build_approach(cfg, validate(cfg), bench, torch.device("cpu"))


@pytest.mark.parametrize("combine,expected", [("sum", 1.0 + 2.0 + 4.0), ("mean", None)])
def test_ewc_fisher_of_three_tasks(monkeypatch, bench, combine, expected):
    """Task t's Fisher is the constant 2^t (patched in): the sum is 7; the running mean is
    ((1 + 2) / 2 * 2 + 4) / 3 = 7 / 3."""
    def constant(approach, t, task, *args, **kwargs):
        return {k: torch.full_like(p, 2.0 ** t) for k, p in approach.model.named_parameters()}

    monkeypatch.setattr(ewc_module, "task_fisher", constant)
    ewc = _approach("ewc", bench, fisher_combine=combine)
    for t in range(3):
        ewc.after_task(t, bench.tasks[t])
    want = expected if expected is not None else 7.0 / 3.0
    assert all(torch.allclose(f, torch.full_like(f, want)) for f in ewc.fisher.values())


def test_ewc_defaults_to_the_sum():
    assert ewc_module.EWCParams().fisher_combine == "sum"


# ---- the Fisher in eval mode: deterministic, dropout off ----------------------------------------
@pytest.mark.parametrize("name", ["ewc", "imm-mode"])
def test_fisher_is_deterministic_in_eval_mode_and_not_in_train_mode(name, bench):
    approach = _approach(name, bench)  # the MLP has dropout 0.5
    approach.fit(0, bench.tasks[0])
    p = approach.params
    first = ewc_module.task_fisher(approach, 0, bench.tasks[0], 20, "per-sample", mode=p.fisher_mode)
    second = ewc_module.task_fisher(approach, 0, bench.tasks[0], 20, "per-sample", mode=p.fisher_mode)
    assert p.fisher_mode == "eval"
    assert all(torch.equal(first[k], second[k]) for k in first)
    noisy = ewc_module.task_fisher(approach, 0, bench.tasks[0], 20, "per-sample", mode="train")
    assert any(not torch.equal(first[k], noisy[k]) for k in first)


def test_dwa_fisher_pass_runs_in_eval_mode(monkeypatch, bench):
    seen = []
    import dwa_core.approaches.dwa as dwa_module

    real = dwa_module.masked_per_sample_fisher  # the per-sample form (the default)

    def spy(model, *args, **kwargs):
        seen.append(kwargs["train_mode"])
        return real(model, *args, **kwargs)

    monkeypatch.setattr(dwa_module, "masked_per_sample_fisher", spy)
    dwa = _approach("dwa", bench)
    dwa.fit(0, bench.tasks[0])
    dwa_train = _approach("dwa", bench, fisher_mode="train")
    dwa_train.fit(0, bench.tasks[0])
    assert seen == [False, True]


# ---- recorded losses are the task's cross-entropy -----------------------------------------------
@pytest.mark.parametrize("name", ["lwf", "lfl", "ewc", "hat", "imm-mode", "dwa"])
def test_recorded_test_loss_is_the_cross_entropy(name, bench):
    approach = _approach(name, bench)
    for t in range(2):
        approach.fit(t, bench.tasks[t], bench.tasks[:t])
    for u in range(2):
        loss, acc = approach.test(u, bench.tasks[u])
        approach.model.eval()
        with torch.no_grad():
            logits = approach.forward(bench.tasks[u].test.x, u).logits
        assert loss == pytest.approx(F.cross_entropy(logits, bench.tasks[u].test.y).item(), rel=1e-5)


def test_validation_criterion_is_one_rule_for_every_approach(bench):
    ewc = _approach("ewc", bench)
    ewc.fit(0, bench.tasks[0])
    ewc.after_task(0, bench.tasks[0])  # a Fisher: the training loss now has a penalty
    x, y = bench.tasks[0].valid.x, bench.tasks[0].valid.y
    ewc.model.eval()
    with torch.no_grad():
        out = ewc.forward(x, 0)
        ce, total = F.cross_entropy(out.logits, y), ewc.loss(out, y, 0)
        assert ewc.validation_loss(out, y, 0) == ce
        ewc.train_cfg = TrainConfig(valid_loss="total")
        assert ewc.validation_loss(out, y, 0) == total


# ---- HAT when earlier tasks use every unit ------------------------------------------------------
def test_hat_regularizer_is_zero_with_a_zero_gradient_when_no_unit_is_free():
    masks = [torch.full((4,), 0.3, requires_grad=True), torch.full((3,), 0.7, requires_grad=True)]
    full = [torch.ones(4), torch.ones(3)]
    r = mask_regularizer(masks, full)
    r.backward()
    assert r.item() == 0.0 and all(torch.equal(m.grad, torch.zeros_like(m)) for m in masks)
    # one free unit of 7: R = its mask / 1
    partly = [torch.tensor([1.0, 1.0, 1.0, 0.0]), torch.ones(3)]
    assert mask_regularizer([m.detach() for m in masks], partly).item() == pytest.approx(0.3)


def test_hat_trains_on_after_its_network_is_full(bench):
    hat = _approach("hat", bench)
    hat.fit(0, bench.tasks[0])
    hat.cumulative = {k: torch.ones_like(v) for k, v in hat.cumulative.items()}  # every unit used
    hat._update_multipliers()
    history = hat.fit(1, bench.tasks[1], bench.tasks[:1])
    assert all(math.isfinite(row["train_loss"]) for row in history)


# ---- task-agnostic evaluation: the most confident head -----------------------------------------
class _Fixed:
    """A stand-in network: head h gives the logits `table[h]` for every sample."""

    def __init__(self, table):
        self.table = table

    def eval(self):
        return self

    def __call__(self, x, h):
        return self.table[h].expand(len(x), -1)


def test_task_agnostic_picks_the_most_confident_head_by_hand(bench):
    sgd = _approach("sgd", bench)
    task = bench.tasks[0]
    # head 0 is confident in class 1 (softmax ~0.88), head 1 less so in class 0 (~0.73): head 0 wins
    sgd.model = _Fixed({0: torch.tensor([[0.0, 2.0]]), 1: torch.tensor([[1.0, 0.0]])})
    acc, inference = sgd.task_agnostic(0, task, seen=2)
    assert inference == 1.0
    assert acc == pytest.approx((task.test.y == 1).float().mean().item())
    acc, inference = sgd.task_agnostic(1, task, seen=2)  # as if these samples were task 1's
    assert inference == 0.0


def test_runs_record_task_agnostic_matrices():
    results = run_experiment(_tiny("hat", 2), save=False)
    agnostic, inference = results.agnostic_acc_matrix(), results.task_inference_matrix()
    assert agnostic.shape == inference.shape == (2, 2)
    assert inference[0, 0] == 1.0  # one head seen: every sample goes to it
    assert agnostic[0, 0] == results.acc[0][0]
    assert 0.0 <= agnostic[1].min() and agnostic[1].max() <= 1.0
    assert math.isnan(run_experiment(_tiny("random", 2), save=False).agnostic_acc[1][1])


def test_comparison_reports_the_final_task_agnostic_row_by_hand():
    from dwa_core.compare import agnostic_metrics
    from dwa_core.results import Results

    r = Results.empty({}, ["a", "b"], [2, 2], "cpu")
    r.agnostic_acc = [[0.9, 0.0], [0.6, 0.8]]
    r.task_inference_acc = [[1.0, 0.0], [0.25, 0.75]]
    assert agnostic_metrics(r) == {"agnostic_acc": pytest.approx(0.7), "task_inference": pytest.approx(0.5)}
    r.agnostic_acc, r.task_inference_acc = [], []  # a file written before they were recorded
    assert all(math.isnan(v) for v in agnostic_metrics(r).values())
