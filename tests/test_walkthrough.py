"""dwa_core.walkthrough (the helpers of notebooks 03 and 05) and the smoke profile of figures.py."""

import math

import numpy as np
import pytest
import torch

from dwa_core import figures, walkthrough
from dwa_core.approaches.hat import HAT
from dwa_core.config import ExperimentConfig, TrainConfig
from dwa_core.experiment import run_experiment
from dwa_core.models.hat import MLPHAT


def sig(z):
    return 1 / (1 + math.exp(-z))


# ---- HAT: pure helpers -------------------------------------------------------------------------
def test_gate_table():
    table = walkthrough.gate_table([0.0, 1.0, -1.0], [1, 2])
    assert table.shape == (2, 3)
    np.testing.assert_allclose(table, [[0.5, sig(1), sig(-1)], [0.5, sig(2), sig(-2)]], rtol=1e-12)


def test_anneal_trace_is_eq3_at_batch_positions():
    # s = 1/s_max + (s_max - 1/s_max) * b/n: s_max 4, 2 batches -> 0.25, 0.25 + 3.75/2
    np.testing.assert_allclose(walkthrough.anneal_trace(4.0, 2), [0.25, 2.125])
    assert walkthrough.anneal_trace(400.0, 10)[0] == pytest.approx(1 / 400)


def test_compensation_factor_with_the_cosh_clamp():
    # (s_max/s) (cosh(clamp(s e)) + 1) / (cosh(e) + 1)
    f = walkthrough.compensation_factor([0.0, 0.5], 2.0, 4.0)
    assert f[0] == pytest.approx(2.0)  # e = 0: s_max / s
    assert f[1] == pytest.approx(2 * (math.cosh(1.0) + 1) / (math.cosh(0.5) + 1))
    assert walkthrough.compensation_factor([1.0], 1.0, 4.0)[0] == pytest.approx(4.0)  # s = 1: s_max
    # clamp: s e = 100 is clamped to thres_cosh = 1, so the factor is (cosh 1 + 1)/(cosh 1 + 1) = 1
    assert walkthrough.compensation_factor([1.0], 100.0, 100.0, thres_cosh=1.0)[0] == pytest.approx(1.0)


def test_unit_usage_and_predicted_blocked():
    assert walkthrough.unit_usage({"a": [0.1, 0.9, 0.6, 0.2]}) == {"a": 0.5}
    # fc1 (2 units, 4 inputs): unit 0 used -> 4 of 8 entries; fc2 (3 units, 2 inputs): units 0,1
    # used, input 0 used -> 2 of 6 entries; 6 of 14 in all
    cumulative = {"fc1": torch.tensor([1.0, 0.0]), "fc2": torch.tensor([1.0, 1.0, 0.0])}
    assert walkthrough.predicted_blocked(cumulative, {"fc1": 4, "fc2": 2}) == pytest.approx(6 / 14)


# ---- HAT: on a model -----------------------------------------------------------------------------
def _tiny_hat():
    torch.manual_seed(0)
    model = MLPHAT((4,), [2, 2], hidden=3, layers=2)
    model.drop.p = model.drop_in.p = 0.0  # every gradient entry is non-zero below
    with torch.no_grad():
        for layer in model.layers.values():
            layer.weight.fill_(0.1)
            layer.bias.fill_(1.0)  # every ReLU is active
        model.emb["fc1"].weight[0] = torch.tensor([1.0, -1.0, 1.0])  # task 0 uses fc1 units 0, 2
        model.emb["fc2"].weight[0] = torch.tensor([-1.0, 1.0, -1.0])  # and fc2 unit 1
        model.emb["fc1"].weight[1] = 1.0  # task 1 opens every unit
        model.emb["fc2"].weight[1] = 1.0
    approach = HAT(model, TrainConfig(epochs=1))
    approach.after_task(0, None)  # cumulative = task 0's masks at s_max
    return approach


def test_gradient_conditioning_counts_the_blocked_entries():
    approach = _tiny_hat()
    x, y = torch.rand(5, 4) + 0.5, torch.tensor([0, 1, 0, 1, 1])
    before = [p.detach().clone() for p in approach.model.parameters()]
    rng = torch.get_rng_state()
    out = walkthrough.gradient_conditioning(approach, x, y, 1)
    # fc1 (3x4): rows 0 and 2 are used by task 0 -> 8 of 12 blocked; fc2 (3x3): min(a_post_i, a_pre_j)
    # with a_post = [0,1,0], a_pre = [1,0,1] is 1 at (1,0) and (1,2) -> 2 of 9; 10 of 21 in all
    assert out["layers"]["layers.fc1.weight"]["blocked"] == pytest.approx(8 / 12)
    assert out["layers"]["layers.fc2.weight"]["blocked"] == pytest.approx(2 / 9)
    assert out["blocked"] == pytest.approx(10 / 21) and out["blocked_all"] == pytest.approx(10 / 21)
    assert out["s"] == pytest.approx(1 / 400 + (400 - 1 / 400) * 0.5)
    # rows of fc1's gradient are identical (same weights, inputs), so row 1 keeps 1/3 of the norm
    assert out["layers"]["layers.fc1.weight"]["kept_norm"] == pytest.approx(math.sqrt(1 / 3))
    # no step, no gradients left behind, no random numbers consumed
    assert all(torch.equal(a, b) for a, b in zip(before, approach.model.parameters()))
    assert all(p.grad is None for p in approach.model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)


def _hat_cfg():
    return ExperimentConfig(benchmark="split-digits", approach="hat", seed=0, device="cpu",
                            benchmark_params={"per_class": 10}, network_params={"hidden": 16, "layers": 2},
                            train=TrainConfig(epochs=2, lr=0.1, lr_schedule="original-code"))


def test_fit_hat_records_masks_conditioning_and_the_same_run():
    approach, bench = walkthrough.prepare(_hat_cfg())
    records = walkthrough.fit_hat(approach, bench)
    assert len(records) == 5 and "conditioning" not in records[0]
    assert all("conditioning" in r for r in records[1:])
    # the recorded accuracy rows are run_experiment's matrix (the conditioning probe uses no RNG)
    acc = run_experiment(_hat_cfg(), save=False).acc_matrix()
    for t, r in enumerate(records):
        np.testing.assert_allclose(r["acc"], acc[t, : t + 1])
    for prev, rec in zip(records, records[1:]):
        for k in rec["cumulative"]:  # the cumulative mask never shrinks
            assert np.all(rec["cumulative"][k] >= prev["cumulative"][k])
            expected = np.maximum(prev["cumulative"][k], rec["masks"][k])
            np.testing.assert_allclose(rec["cumulative"][k], expected)
        # the blocked weights of a real batch are those the cumulative mask predicts
        assert rec["conditioning"]["blocked_all"] == pytest.approx(rec["predicted_blocked"], abs=0.01)
        # R (Eq. 5) by hand: sum a_t (1 - a_<t) / sum (1 - a_<t)
        num = sum((rec["masks"][k] * (1 - prev["cumulative"][k])).sum() for k in rec["masks"])
        den = sum((1 - prev["cumulative"][k]).sum() for k in rec["masks"])
        assert rec["regularizer"] == pytest.approx(num / den, rel=1e-5)
    first = records[0]["masks"]
    assert records[0]["regularizer"] == pytest.approx(
        sum(m.sum() for m in first.values()) / sum(m.size for m in first.values()), rel=1e-5)


# ---- DWA ----------------------------------------------------------------------------------------
def test_schedule_table_by_hand():
    table = walkthrough.schedule_table(4, 0.2, horizon=5)
    np.testing.assert_allclose(table["linear"], [0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    np.testing.assert_allclose(table["exp"], [0.2, 0.25, 0.4, 0.65, 1.0, 1.0])  # 0.2 + 0.8 (e/4)^2
    assert table["log"][1] == pytest.approx(0.2 + 0.8 * math.log(2) / math.log(5))
    assert table["log"][4] == pytest.approx(1.0)


def test_dwa_steps_inspect_anchors_and_loss_terms():
    cfg = ExperimentConfig(benchmark="split-digits", approach="dwa", seed=0, device="cpu",
                           benchmark_params={"per_class": 12}, network_params={"hidden": 8},
                           approach_params={"curriculum": "linear:2:0.2", "anchor_samples": 8},
                           train=TrainConfig(epochs=1, batch_size=16, lr=0.05))
    approach, bench = walkthrough.prepare(cfg)
    task0, task1 = bench.tasks[0], bench.tasks[1]
    seen = walkthrough.dwa_inspect(approach, task0.test.x[:3], 0)
    assert seen["embedding"].shape == (3, 100) and seen["output"].shape == (3, 2)
    shapes = {k: v.shape for k, v in seen["masks"].items()}
    assert shapes == {"fc1.weight": (3, 8, 64), "fc2.weight": (3, 8, 8)}
    assert np.abs(seen["masks"]["fc1.weight"]).max() <= 1  # tanh gate

    terms0 = walkthrough.dwa_loss_terms(approach, task0.train, torch.arange(8), 0)
    assert terms0["embedding"] is None and terms0["plasticity"] is None  # task 0: CE + λ3 R
    acc = walkthrough.fit_tasks(approach, bench, 1)
    assert len(acc) == 1 and len(acc[0]) == 1 and 0 <= acc[0][0] <= 1
    rows, anchors = walkthrough.start_task(approach, task1, 1)
    zeta = approach.zeta(task1.train.x)
    assert torch.equal(rows.sort().values, (zeta <= 0.2).nonzero().squeeze(1))  # θ_0 = 0.2
    assert set(anchors) == {"positive", "negative", "previous"} and anchors["previous"] is not None
    summary = walkthrough.anchor_summary(approach, task1.train.x[:8], task1.train.y[:8], 1, anchors)
    assert summary["cos_positive_negative"] == pytest.approx(0.0, abs=1e-5)  # N ⟂ P
    assert summary["norm_negative"] == pytest.approx(1.0, abs=1e-5)
    assert {"ce_positive", "ce_negative", "ce_previous"} <= set(summary)

    terms = walkthrough.dwa_loss_terms(approach, task1.train, torch.arange(16), 1)
    p = approach.params
    assert terms["embedding"] is not None and terms["plasticity"] is not None and terms["sigma"] == 1.0
    by_hand = (terms["ce"] + p.lamb_triplet * terms["embedding"] + p.lamb_plasticity * terms["plasticity"]
               + p.lamb_sparsity * terms["sparsity"])
    assert terms["total"] == pytest.approx(by_hand, rel=1e-5)
    assert terms["approach_loss"] == pytest.approx(terms["total"], rel=1e-5)


# ---- the smoke profile ---------------------------------------------------------------------------
def test_smoke_profile_settings_per_family_and_approach():
    sgd = figures.profile_config("smoke", "sgd")
    assert sgd.network_params == {"hidden": 50, "layers": 3, "dropout": 0.0}
    assert (sgd.train.epochs, sgd.train.lr, sgd.train.lr_schedule) == (30, 0.1, "original-code")
    assert figures.profile_config("smoke", "ewc").network_params == sgd.network_params  # plain family
    assert figures.profile_config("smoke", "hat").network_params == {"hidden": 50, "layers": 3}
    dwa = figures.profile_config("smoke", "dwa", curriculum=None)
    assert dwa.approach_params == {"curriculum": None}  # the call overrides the profile's curriculum
    assert figures.profile_config("smoke", "dwa").approach_params == {"curriculum": "linear:15:0.2"}
    assert figures.profile_config("smoke", "progressive").network_params == {}
    # one protocol: every approach of a profile trains under the same TrainConfig
    for profile in figures.PROFILES:
        trains = {figures.profile_config(profile, a).train for a in ("sgd", "ewc", "hat", "dwa", "joint")}
        assert len(trains) == 1, profile
    assert figures.profile_config("paper", "sgd").train.epochs == 200
