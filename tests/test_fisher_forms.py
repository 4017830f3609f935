"""The per-sample empirical Fisher (the papers' EWC, issue 12) against a hand formula and a naive
loop, the batch form (the original code) below it, and imm-mean keeping each task's head."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dwa_core import ExperimentConfig, TrainConfig, data
from dwa_core.experiment import build_approach, validate
from dwa_core.functional.fisher import fisher_diagonal, iterate_batches, per_sample_fisher


class Linear(nn.Module):
    """logits = W x + b for every task: the CE gradient is known in closed form."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x, t):
        return self.fc(x)


def data_of(n=7):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, generator=g), torch.randint(0, 2, (n,), generator=g)


def test_per_sample_fisher_is_the_mean_of_squared_per_sample_gradients_by_hand():
    torch.manual_seed(0)
    model, (x, y) = Linear(), data_of()
    W, b = model.fc.weight.detach().numpy(), model.fc.bias.detach().numpy()
    # d CE_i / d z = softmax(z_i) - onehot(y_i); d/dW = that outer x_i; d/db = that
    z = x.numpy() @ W.T + b
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    delta = p - np.eye(2)[y.numpy()]
    expected_w = np.mean([np.outer(d, xi) ** 2 for d, xi in zip(delta, x.numpy())], axis=0)
    expected_b = np.mean(delta ** 2, axis=0)
    fisher = per_sample_fisher(model, iterate_batches(x, y, 3), 0)  # chunks of 3, 3 and 1
    np.testing.assert_allclose(fisher["fc.weight"].numpy(), expected_w, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(fisher["fc.bias"].numpy(), expected_b, rtol=1e-5, atol=1e-7)


def test_batch_form_is_below_the_per_sample_form_and_equal_for_batches_of_one():
    torch.manual_seed(0)
    model, (x, y) = Linear(), data_of(20)
    per_sample = per_sample_fisher(model, iterate_batches(x, y, 20), 0)
    ce = lambda xb, yb: F.cross_entropy(model(xb, 0), yb)  # noqa: E731
    batch = fisher_diagonal(model, iterate_batches(x, y, 10), ce)
    ones = fisher_diagonal(model, iterate_batches(x, y, 1), ce)
    for name in per_sample:  # Jensen: |B| * mean(g)^2 <= sum(g^2) over each batch
        assert (batch[name] <= per_sample[name] + 1e-7).all()
        torch.testing.assert_close(ones[name], per_sample[name])


def test_penalty_enters_every_per_sample_gradient():
    torch.manual_seed(0)
    model, (x, y) = Linear(), data_of(4)
    shift = {n: p.detach() + 1.0 for n, p in model.named_parameters()}
    penalty = lambda params: 0.5 * sum(((params[n] - shift[n]) ** 2).sum() for n in params)  # noqa: E731
    with_penalty = per_sample_fisher(model, iterate_batches(x, y, 4), 0, penalty=penalty)
    # gradient of the penalty = theta - shift = -1 everywhere: g_i - 1, squared
    naive = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(4):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 1], 0), y[i:i + 1]).backward()
        for n, p in model.named_parameters():
            naive[n] += (p.grad - 1.0) ** 2 / 4
    for n in naive:
        torch.testing.assert_close(with_penalty[n], naive[n])


CFG = ExperimentConfig(approach="ewc", train=TrainConfig(epochs=2, batch_size=32, lr=0.1), max_tasks=1,
                       benchmark_params={"per_class": 30},
                       network_params={"hidden": 16, "layers": 2, "dropout": 0.0})


def fitted_ewc(**params):
    cfg = CFG.replace(approach_params=params)
    bench = data.load_benchmark(cfg)
    approach = build_approach(cfg, validate(cfg), bench, torch.device("cpu"))
    approach.fit(0, bench.tasks[0])
    return approach, bench.tasks[0]


def test_ewc_default_fisher_is_the_per_sample_one_and_larger_than_the_batch_form():
    approach, task = fitted_ewc()
    model = approach.model
    naive = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(len(task.train.y)):  # one backward per sample (dropout 0: no randomness)
        model.zero_grad()
        F.cross_entropy(model(task.train.x[i:i + 1], 0), task.train.y[i:i + 1]).backward()
        for n, p in model.named_parameters():
            naive[n] += p.grad ** 2 / len(task.train.y)
    for n in naive:
        torch.testing.assert_close(approach.fisher[n], naive[n], rtol=1e-4, atol=1e-9)
    batch, _ = fitted_ewc(fisher_form="batch")
    total = lambda f: sum(v.sum().item() for v in f.values())  # noqa: E731
    assert total(approach.fisher) > 3 * total(batch.fisher)  # seeds alike: same trained weights


def test_imm_mean_keeps_the_new_heads_trained_weights_by_default():
    cfg = CFG.replace(approach="imm-mean", max_tasks=2)
    bench = data.load_benchmark(cfg)
    approach = build_approach(cfg, validate(cfg), bench, torch.device("cpu"))
    initial = approach.model.last.heads[1].weight.detach().clone()
    approach.fit(0, bench.tasks[0])
    trunk_before_merge = {}
    merge = approach.after_task

    def spy(t, task):
        trunk_before_merge["w"] = approach.model.features[1].weight.detach().clone()
        trunk_before_merge["head"] = approach.model.last.heads[1].weight.detach().clone()
        trunk_before_merge["anchor"] = approach.old_params["features.1.weight"].clone()
        merge(t, task)
    approach.after_task = spy
    approach.fit(1, bench.tasks[1])
    head = approach.model.last.heads[1].weight
    torch.testing.assert_close(head, trunk_before_merge["head"])  # the head as trained
    assert not torch.allclose(head, (trunk_before_merge["head"] + initial) / 2)  # the original's
    # the trunk is merged: (theta_1 + 1 * theta_0_merged) / 2
    torch.testing.assert_close(approach.model.features[1].weight,
                               (trunk_before_merge["w"] + trunk_before_merge["anchor"]) / 2)


class Scaled(nn.Module):
    """A parameter outside Linear / Conv2d: per_sample_fisher takes the torch.func path."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.scale = nn.Parameter(torch.tensor([1.5, 0.5]))

    def forward(self, x, t):
        return self.fc(x) * self.scale


def naive_fisher(model, x, y):
    out = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(len(y)):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 1], 0), y[i:i + 1]).backward()
        for n, p in model.named_parameters():
            if p.grad is not None:  # None: another task's head
                out[n] += p.grad ** 2 / len(y)
    return out


@pytest.mark.parametrize("make", [Scaled, lambda: __import__("dwa_core").models.build(
    "alexnet", "plain", (3, 32, 32), [2, 3])], ids=["torch.func path", "conv path"])
def test_both_paths_agree_with_one_backward_per_sample(make):
    torch.manual_seed(0)
    model = make().eval()
    g = torch.Generator().manual_seed(1)
    shape = (3,) if isinstance(model, Scaled) else (3, 32, 32)
    x, y = torch.randn(6, *shape, generator=g), torch.randint(0, 2, (6,), generator=g)
    fisher = per_sample_fisher(model, iterate_batches(x, y, 4), 0, train_mode=False)
    for name, expected in naive_fisher(model, x, y).items():
        torch.testing.assert_close(fisher[name], expected, rtol=1e-4, atol=1e-8)
