"""The learning-rate protocol: pure state machine and the loop on a toy problem."""

import pytest

from dwa_core import ExperimentConfig, TrainConfig, run_experiment
from dwa_core.approaches.schedule import lr_after_epoch, lr_at_start

KW = dict(base_lr=0.1, lr_factor=10, lr_min=1e-3, lr_patience=2, warmup_epochs=0)


def step(state, epoch, loss, schedule="paper", **overrides):
    return lr_after_epoch(state, epoch, loss, schedule=schedule, **{**KW, **overrides})


def test_paper_schedule_decays_after_patience_and_stops_below_lr_min():
    state = lr_at_start(0.1, 0, 1, patience=2)
    state, improved = step(state, 0, 1.0)
    assert improved and state.lr == 0.1
    state, _ = step(state, 1, 2.0)
    assert state.lr == 0.1 and state.patience == 1
    state, _ = step(state, 2, 2.0)
    assert state.lr == pytest.approx(0.01) and not state.stop
    state, _ = step(state, 3, 2.0)
    state, _ = step(state, 4, 2.0)
    assert state.lr == pytest.approx(0.001) and not state.stop
    state, _ = step(state, 5, 2.0)
    state, _ = step(state, 6, 2.0)
    assert state.stop  # 1e-4 < lr_min


def test_original_code_schedule_never_decays_without_warmup():
    state = lr_at_start(0.1, 0, 1, patience=2)
    for epoch in range(20):
        state, _ = step(state, epoch, 5.0 + epoch, schedule="original-code")
    assert state.lr == 0.1 and not state.stop


def test_warmup_divides_then_restores_base_lr():
    state = lr_at_start(0.1, 3, 100, patience=2)
    assert state.lr == pytest.approx(0.001)
    for epoch in range(3):
        state, _ = step(state, epoch, 1.0 + epoch, warmup_epochs=3)
    assert state.lr == pytest.approx(0.1)


def test_loop_decays_and_stops_on_a_plateau(tmp_path):
    # Labels of the validation split carry no signal once the network has fit: the validation
    # loss plateaus, so the lr must fall by lr_factor and the task stop before `epochs`.
    cfg = ExperimentConfig(train=TrainConfig(epochs=200, lr=0.1, lr_factor=10, lr_min=0.005,
                                             lr_patience=2, batch_size=64),
                           benchmark_params={"per_class": 30}, max_tasks=1,
                           network_params={"hidden": 16, "layers": 1})
    history = run_experiment(cfg, save=False).history[0]
    lrs = [row["lr"] for row in history]
    assert len(history) < 200
    assert sorted(set(lrs), reverse=True) == pytest.approx([0.1, 0.01])
    assert lrs == sorted(lrs, reverse=True)


def test_loop_original_code_schedule_runs_every_epoch():
    cfg = ExperimentConfig(train=TrainConfig(epochs=12, lr=0.1, lr_patience=1,
                                             lr_schedule="original-code"),
                           benchmark_params={"per_class": 20}, max_tasks=1,
                           network_params={"hidden": 16, "layers": 1})
    history = run_experiment(cfg, save=False).history[0]
    assert len(history) == 12 and {row["lr"] for row in history} == {0.1}
