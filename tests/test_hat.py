"""HAT (docs/original-code.md#hat) and its compression analysis
(docs/original-code.md#compression-experiment)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dwa_core.approaches.hat import HAT
from dwa_core.compression import COLUMNS, compression_analysis
from dwa_core.config import ConfigError, ExperimentConfig, TrainConfig
from dwa_core.experiment import run_experiment
from dwa_core.functional import hat as H
from dwa_core.models import build
from dwa_core.models.hat import MLPHAT, AlexNetHAT


def test_gate_and_anneal():
    a = H.gate(torch.tensor([0.0, 1.0, -1.0]), 2.0)
    assert torch.allclose(a, torch.tensor([0.5, 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(2))]))
    assert H.anneal_s(0.0, 400) == pytest.approx(0.0025)
    assert H.anneal_s(0.5, 400) == pytest.approx(0.0025 + 399.9975 / 2)
    assert H.anneal_s(1.0, 400) == pytest.approx(400.0)


def test_regularizer():
    masks = [torch.tensor([0.5, 1.0]), torch.tensor([0.2])]
    assert float(H.mask_regularizer(masks)) == pytest.approx(1.7 / 3)
    prev = [torch.tensor([1.0, 0.0]), torch.tensor([0.5])]
    # (0.5*0 + 1*1 + 0.2*0.5) / (0 + 1 + 0.5)
    assert float(H.mask_regularizer(masks, prev)) == pytest.approx(1.1 / 1.5)


def test_compensation():
    g = torch.ones(3)
    e = torch.tensor([0.0, 1.0, 1.0])
    out = H.compensate_embedding_grad(g, e, s=2.0, s_max=4.0, thres_cosh=50)
    ratio = 2 * (math.cosh(2) + 1) / (math.cosh(1) + 1)  # (s_max/s) (cosh(s e) + 1) / (cosh(e) + 1)
    expected = [2 * 2 / 2, ratio, ratio]
    assert torch.allclose(out, torch.tensor(expected))
    clamped = H.compensate_embedding_grad(torch.ones(1), torch.ones(1), s=100.0, s_max=400.0, thres_cosh=50)
    assert float(clamped) == pytest.approx(4 * (math.cosh(50) + 1) / (math.cosh(1) + 1), rel=1e-5)


def test_multipliers_and_views():
    view = H.weight_view(torch.tensor([1.0, 0.0]), torch.tensor([0.3, 1.0]), 2)
    assert torch.allclose(H.gradient_multiplier(view), torch.tensor([[0.7, 0.0], [1.0, 1.0]]))
    conv = H.weight_view(torch.tensor([1.0, 0.0]), None, 4)
    assert conv.shape == (2, 1, 1, 1) and conv.flatten().tolist() == [1.0, 0.0]
    assert H.channels_to_units(torch.tensor([1.0, 0.0]), 2).tolist() == [1.0, 1.0, 0.0, 0.0]
    merged = H.cumulative_update({"a": torch.tensor([0.2, 0.9])}, {"a": torch.tensor([0.5, 0.1])})
    assert merged["a"].tolist() == pytest.approx([0.5, 0.9])


def test_alexnet_fc1_view_is_channel_major():
    net = AlexNetHAT((3, 32, 32), [2, 2], fc_units=8)  # c3 output 256 x 2 x 2 -> fc1 input 1024
    masks = {k: torch.ones(e.weight.shape[1]) for k, e in net.emb.items()}
    masks["c3"] = torch.zeros(256)
    masks["c3"][1] = 1.0
    view = net.views(masks)["layers.fc1.weight"].expand(8, 1024)
    assert view[:, 4:8].eq(1).all() and view[:, :4].eq(0).all() and view[:, 8:].eq(0).all()
    assert net.views(masks)["layers.c1.weight"].shape == (64, 1, 1, 1)


def test_conditioned_gradients_zero_where_cumulative_mask_is_one():
    torch.manual_seed(0)
    net = MLPHAT((1, 8, 8), [3, 3], hidden=6)
    approach = HAT(net, TrainConfig())
    approach.cumulative = {"fc1": torch.tensor([1.0, 1, 1, 0, 0, 0]),
                           "fc2": torch.tensor([1.0, 0, 0, 0, 0, 0])}
    approach._update_multipliers()
    with torch.no_grad():  # task 1's own masks open every unit, so only the cumulative ones gate,
        for e in net.emb.values():  # and positive biases keep every ReLU active
            e.weight[1] = 1.0
        for layer in net.layers.values():
            layer.bias.fill_(1.0)
    net.train()
    outputs = approach.forward(torch.randn(5, 1, 8, 8), 1)
    approach.loss(outputs, torch.tensor([0, 1, 2, 0, 1]), 1).backward()
    approach.after_backward(1, outputs)
    assert net.layers.fc1.weight.grad[:3].eq(0).all() and net.layers.fc1.bias.grad[:3].eq(0).all()
    # fc2: zero only where both the post unit (row 0) and the pre unit (fc1 units 0-2) are used
    assert net.layers.fc2.weight.grad[0, :3].eq(0).all() and net.layers.fc2.bias.grad[0] == 0
    assert net.layers.fc1.weight.grad[3:].abs().sum() > 0
    net.emb["fc1"].weight.data.fill_(10.0)
    approach.after_step(1)
    assert net.emb["fc1"].weight.max() == 6.0


def _forgetting(approach, seed=0):
    net = {"hidden": 200} if approach == "hat" else {"hidden": 200, "layers": 2}
    cfg = ExperimentConfig(benchmark="split-digits", approach=approach, seed=seed, network_params=net,
                           benchmark_params={"shape": "1x28x28", "per_class": 30},
                           train=TrainConfig(epochs=30, lr=0.1, batch_size=32, lr_patience=100))
    acc = run_experiment(cfg, save=False).acc
    last = len(acc) - 1
    return float(np.mean([acc[u][u] - acc[last][u] for u in range(last)]))


def test_hat_forgets_less_than_sgd():
    hat, sgd = _forgetting("hat"), _forgetting("sgd")
    assert hat <= 0.005  # HAT's masks at s_max are nearly binary: earlier tasks are kept
    assert sgd - hat >= MARGIN


MARGIN = 0.02


def test_alexnet_hat_runs_one_epoch():
    cfg = ExperimentConfig(benchmark="split-digits", approach="hat", network="alexnet", max_tasks=2,
                           benchmark_params={"shape": "3x32x32", "per_class": 5},
                           network_params={"fc_units": 64}, train=TrainConfig(epochs=1, batch_size=16))
    res = run_experiment(cfg, save=False)
    assert all(math.isfinite(row["train_loss"]) for hist in res.history for row in hist)
    assert 0.0 <= res.acc[1][0] <= 1.0


def test_network_registry_and_embedding_init():
    net = build("mlp", "hat", (1, 8, 8), [2, 2], {"nhid": 10, "nlayers": 3, "embedding_init": "uniform02"})
    w = torch.cat([e.weight.flatten() for e in net.emb.values()])
    assert len(net.emb) == 3 and w.min() >= 0 and w.max() <= 2


def test_compression_table():
    cfg = ExperimentConfig(benchmark="split-digits", network_params={"hidden": 50},
                           benchmark_params={"per_class": 20}, train=TrainConfig(epochs=3, lr=0.1))
    table = compression_analysis(cfg, [0.1, 4.0])
    assert list(table.columns) == list(COLUMNS) and len(table) == 6
    assert table[["active_units", "active_weights"]].stack().between(0, 1).all()
    final = table.groupby("c").last()
    assert final.loc[4.0, "active_units"] <= final.loc[0.1, "active_units"]


def test_extra_state_roundtrip_restores_multipliers():
    net = MLPHAT((1, 8, 8), [2, 2], hidden=4)
    approach = HAT(net, TrainConfig())
    approach.cumulative = {"fc1": torch.tensor([1.0, 0, 0, 0]), "fc2": torch.tensor([0.0, 1, 0, 0])}
    state = approach.extra_state()
    fresh = HAT(net, TrainConfig())
    fresh.load_extra_state(state)
    # fc2 weight (4 x 4): 1 - min(post, pre) is 0 only at row 1, column 0
    expected = torch.ones(4, 4)
    expected[1, 0] = 0
    assert torch.equal(fresh.multipliers["layers.fc2.weight"], expected)
    assert torch.equal(fresh.multipliers["layers.fc1.bias"], torch.tensor([0.0, 1, 1, 1]))


def test_negligible_masks_are_exactly_zero_no_denormals():
    """sigmoid(-48) = 1.4e-21 < 1e-20 is set to 0; sigmoid(-40) = 4.2e-18 is kept as it is."""
    net = build("mlp", "hat", (1, 8, 8), [2], {"hidden": 4, "layers": 1})
    with torch.no_grad():
        net.emb["fc1"].weight[0] = torch.tensor([-0.12, -0.1, 0.0, 0.01])
    a = net.mask("fc1", 0, 400.0)
    assert a[0].item() == 0.0
    assert a[1].item() == pytest.approx(1 / (1 + math.exp(40)), rel=1e-5)
    assert a[2].item() == 0.5 and a[3].item() == pytest.approx(1 / (1 + math.exp(-4)), rel=1e-6)


def test_negligible_masks_keep_the_exact_embedding_gradient():
    net = build("mlp", "hat", (1, 8, 8), [2], {"hidden": 2, "layers": 1})
    with torch.no_grad():
        net.emb["fc1"].weight[0] = torch.tensor([-0.12, 0.01])
    net.mask("fc1", 0, 400.0).sum().backward()
    z = torch.tensor([-48.0, 4.0], dtype=torch.float64)  # d sigmoid(400 e) / de = 400 σ(z)(1 - σ(z))
    expected = 400 * torch.sigmoid(z) * (1 - torch.sigmoid(z))
    torch.testing.assert_close(net.emb["fc1"].weight.grad[0].double(), expected, rtol=1e-4, atol=0)


def test_old_network_size_names_are_still_accepted():
    # Every family says hidden / layers; presets written with HAT's old nhid / nlayers still build.
    old = build("mlp", "hat", (1, 8, 8), [2, 2], {"nhid": 7, "nlayers": 3})
    new = build("mlp", "hat", (1, 8, 8), [2, 2], {"hidden": 7, "layers": 3})
    assert [p.shape for p in old.parameters()] == [p.shape for p in new.parameters()]
    assert list(old.layers) == ["fc1", "fc2", "fc3"] and old.layers["fc1"].out_features == 7
    with pytest.raises(ConfigError, match="'nhid' is the old name of 'hidden'"):
        build("mlp", "hat", (1, 8, 8), [2, 2], {"nhid": 7, "hidden": 7})
