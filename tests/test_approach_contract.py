"""One contract for every registered approach (docs/adding-an-approach.md, step 5): 2 tasks, 1 epoch,
tiny data; finite losses, logits of the right shape, a usable checkpoint state, and the approach's own
invariant where it has one. A newly registered approach is covered without editing this file."""

import math

import pytest
import torch

from dwa_core import approaches, data
from dwa_core.config import ExperimentConfig, TrainConfig
from dwa_core.experiment import build_approach, validate

# Only to keep the test fast; every other hyper-parameter is the approach's default.
FAST = {"pathnet": {"generations": 1}, "dwa": {"anchor_samples": 8}}


def _fisher_ok(fisher: dict) -> bool:
    return bool(fisher) and all(torch.isfinite(f).all() and (f >= 0).all() for f in fisher.values())


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _weights(model, prefix: str = "") -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith(prefix)}


# What each approach promises beyond the common contract, checked after task 1 (`before`: the
# model's state_dict after task 0).
INVARIANTS = {
    "ewc": lambda a, before, tasks: _fisher_ok(a.fisher) and _same(
        a.old_params, {k: p.detach() for k, p in a.model.named_parameters()}),  # θ* = the weights now
    "imm-mode": lambda a, before, tasks: _fisher_ok(a.fisher) and a.old_params is not None,
    "imm-mean": lambda a, before, tasks: a.old_params is not None,
    "hat": lambda a, before, tasks: all(((m >= 0) & (m <= 1)).all() for m in a.cumulative.values()),
    "dwa": lambda a, before, tasks: len(a.anchors) == 2 and _fisher_ok(a.fisher),
    "lwf": lambda a, before, tasks: not any(p.requires_grad for p in a.old.parameters()),
    "lfl": lambda a, before, tasks: not any(p.requires_grad for p in a.old.parameters()),
    "joint": lambda a, before, tasks: len(a.training_data(1, tasks[1], tasks[:1])[0][0])
    == len(tasks[0].train) + len(tasks[1].train),
    "random": lambda a, before, tasks: a.test(0, tasks[0])[0] == 0.0,
    "sgd-frozen": lambda a, before, tasks: _same(  # the trunk trained on task 0 only
        {k: v for k, v in before.items() if not k.startswith("last.")},
        {k: v for k, v in _weights(a.model).items() if not k.startswith("last.")}),
    "progressive": lambda a, before, tasks: _same(  # column 0 is frozen after task 0
        {k: v for k, v in before.items() if k.startswith("columns.0.")},
        _weights(a.model, "columns.0.")),
    "pathnet": lambda a, before, tasks: len(a.best_paths) == 2,
}


def _names():
    return [n for n in approaches.names() if not n.startswith("test-")]  # test doubles of other files


@pytest.fixture(scope="module")
def bench():
    cfg = ExperimentConfig(benchmark="split-digits", max_tasks=2, benchmark_params={"per_class": 8})
    return data.load_benchmark(cfg, torch.device("cpu"))


@pytest.mark.parametrize("name", _names())
def test_contract(name, bench):
    cfg = ExperimentConfig(benchmark="split-digits", approach=name, max_tasks=2, device="cpu",
                           benchmark_params={"per_class": 8}, network_params={"hidden": 8},
                           approach_params=FAST.get(name, {}),
                           train=TrainConfig(epochs=1, batch_size=16, lr=0.05))
    approach = build_approach(cfg, validate(cfg), bench, torch.device("cpu"))
    tasks = bench.tasks
    history = approach.fit(0, tasks[0], [])
    before = _weights(approach.model)
    history += approach.fit(1, tasks[1], tasks[:1])
    assert all(math.isfinite(row["train_loss"]) and math.isfinite(row["valid_loss"]) for row in history)
    approach.model.eval()
    for t, task in enumerate(tasks):
        x = task.test.x[:5]
        with torch.no_grad():
            assert approach.forward(x, t).logits.shape == (5, task.n_classes)
        loss, acc = approach.test(t, task)
        assert math.isfinite(loss) and 0.0 <= acc <= 1.0
    approach.load_state_dict(approach.state_dict())  # a checkpoint round-trips
    if name in INVARIANTS:
        assert INVARIANTS[name](approach, before, tasks), f"{name}: its own invariant does not hold"


def test_hooks_receive_their_context_as_arguments(bench):
    from dwa_core.approaches import register
    from dwa_core.approaches.base import Approach, Batch

    calls = []

    @register("test-records-hooks")
    class Records(Approach):
        def before_epoch(self, t, epoch, train):
            calls.append(("before_epoch", t, epoch, len(train)))

        def epoch_indices(self, t, epoch, train):
            return torch.arange(10)  # train on 10 rows only

        def loss(self, outputs, y, t, batch=None):
            assert isinstance(batch, Batch) and torch.equal(batch.split.y[batch.rows], y)
            calls.append(("loss", self.model.training, batch.epoch, batch.progress, len(batch.rows)))
            return super().loss(outputs, y, t, batch)

    cfg = ExperimentConfig(benchmark="split-digits", approach="test-records-hooks", max_tasks=2, device="cpu",
                           benchmark_params={"per_class": 8}, network_params={"hidden": 8},
                           train=TrainConfig(epochs=2, batch_size=4, lr=0.05))
    approach = build_approach(cfg, validate(cfg), bench, torch.device("cpu"))
    approach.fit(0, bench.tasks[0])
    n_train = len(bench.tasks[0].train)
    assert [c for c in calls if c[0] == "before_epoch"] == [("before_epoch", 0, 0, n_train),
                                                              ("before_epoch", 0, 1, n_train)]
    training = [c[2:] for c in calls if c[0] == "loss" and c[1]]
    # epoch 0: 10 rows in batches of 4 at positions 0, 4/10, 8/10; the same in epoch 1
    assert training == [(e, p, n) for e in (0, 1) for p, n in ((0.0, 4), (0.4, 4), (0.8, 2))]
    assert all(c[3] == 1.0 for c in calls if c[0] == "loss" and not c[1])  # evaluation: progress 1
