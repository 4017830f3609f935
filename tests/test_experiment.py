"""run_experiment: determinism, checkpoints and resume, bad input, divergence."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dwa_core import ConfigError, ExperimentConfig, Results, TrainConfig, run_experiment
from dwa_core.approaches import DivergedError, register
from dwa_core.approaches.base import Approach
from dwa_core.results import ResultsError


def test_same_config_and_seed_give_identical_matrices(tiny_cfg):
    a = run_experiment(tiny_cfg, save=False).acc_matrix()
    b = run_experiment(tiny_cfg, save=False).acc_matrix()
    np.testing.assert_array_equal(a, b)
    c = run_experiment(tiny_cfg.replace(seed=1), save=False).acc_matrix()
    assert not np.array_equal(a, c)


class Interrupt(Exception):
    pass


def test_resume_after_interruption_at_a_task_boundary(tiny_cfg, interrupt_and_resume):
    reference = run_experiment(tiny_cfg, save=False).acc_matrix()
    results, trained = interrupt_and_resume(tiny_cfg)
    assert min(trained) == 2  # tasks 0 and 1 were not trained again
    np.testing.assert_array_equal(results.acc_matrix(), reference)


def test_resume_after_interruption_mid_task(tiny_cfg):
    reference = run_experiment(tiny_cfg, save=False).acc_matrix()

    def stop_mid_task_3(t, epoch, row):
        if t == 3 and epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_experiment(tiny_cfg, on_epoch=stop_mid_task_3)
    saved = Results.load(next(Path(tiny_cfg.output_dir).glob("*/results.json")))
    assert saved.completed_tasks == 3
    results = run_experiment(tiny_cfg)
    np.testing.assert_array_equal(results.acc_matrix(), reference)


def test_results_are_saved_as_json_and_text(tiny_cfg):
    results = run_experiment(tiny_cfg)
    run_dir = next(Path(tiny_cfg.output_dir).iterdir())
    loaded = Results.load(run_dir / "results.json")
    assert loaded.acc == results.acc and loaded.finished
    assert loaded.config["seed"] == 0 and "torch" in loaded.versions
    text = (run_dir / "acc.txt").read_text().splitlines()
    assert len(text) == 5 and text[0].split()[0] == f"{results.acc[0][0]:.4f}"
    assert len(loaded.history) == 5 and {"train_loss", "valid_acc", "lr"} <= set(loaded.history[0][0])


def test_corrupt_results_file_is_a_clear_error(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"schema": 1, "config": {}')
    with pytest.raises(ResultsError, match="not valid JSON"):
        Results.load(path)
    path.write_text(json.dumps({"schema": 1, "config": {}, "task_names": ["a", "b"],
                                "task_classes": [2, 2], "acc": [[1, 0]], "loss": [[0, 0], [0, 0]],
                                "history": [], "task_seconds": [], "versions": {}, "device": "cpu",
                                "completed_tasks": 0, "extras": {}}))
    with pytest.raises(ResultsError, match="2x2"):
        Results.load(path)


@pytest.mark.parametrize("changes, message", [
    (dict(approach="nope"), "unknown approach 'nope'; valid: .*sgd"),
    (dict(benchmark="nope"), "unknown benchmark 'nope'; valid: .*split-digits"),
    (dict(approach_params={"lamb": 1}), r"approach_params \(sgd\): unknown parameter\(s\) lamb"),
    (dict(benchmark_params={"shape": "4x4"}), "shape"),
    (dict(benchmark_params={"valid_fraction": 2.0}), "valid_fraction"),
    (dict(network="resnet"), "network"),
    (dict(device="cuda:0"), "CUDA is not available"),
])
def test_bad_input_fails_before_training(tiny_cfg, changes, message):
    if changes.get("device") and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    epochs = []
    with pytest.raises(ConfigError, match=message):
        run_experiment(tiny_cfg.replace(**changes), on_epoch=lambda *a: epochs.append(a))
    assert epochs == []


@pytest.mark.parametrize("train, message", [
    (dict(epochs=0), "train.epochs"), (dict(lr=-1.0), "train.lr"),
    (dict(lr_schedule="cosine"), "train.lr_schedule"), (dict(lr_factor=1), "train.lr_factor"),
])
def test_invalid_train_values(train, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**train)


def test_unknown_config_keys_and_bad_weight_init():
    with pytest.raises(ConfigError, match="unknown parameter"):
        ExperimentConfig.from_dict({"benchmark": "split-digits", "epochz": 3})
    with pytest.raises(ConfigError, match="weight_init"):
        ExperimentConfig(weight_init="he")
    with pytest.raises(ConfigError, match="seed"):
        ExperimentConfig.from_dict({"seed": "abc"})


@register("test-diverges")
class Diverges(Approach):
    """Test double: the loss turns NaN on task 1."""

    def loss(self, outputs, y, t, batch=None):
        loss = super().loss(outputs, y, t, batch)
        return loss * float("nan") if t == 1 else loss


def test_divergence_names_task_and_epoch_and_keeps_done_tasks(tiny_cfg):
    cfg = tiny_cfg.replace(approach="test-diverges")
    with pytest.raises(DivergedError, match=r"task 1 .*epoch 0"):
        run_experiment(cfg)
    saved = Results.load(next(Path(cfg.output_dir).glob("*/results.json")))
    assert saved.completed_tasks == 1 and saved.acc[0][0] > 0.5


def test_checkpoint_of_another_config_is_not_reused(tiny_cfg):
    run_experiment(tiny_cfg.replace(max_tasks=2))
    other = run_experiment(tiny_cfg.replace(max_tasks=3))  # another key: another run dir
    assert other.completed_tasks == 3


def test_validation_accuracy_matrix_is_recorded_and_differs_from_test(tiny_cfg):
    results = run_experiment(tiny_cfg)
    valid = results.valid_acc_matrix()
    assert valid.shape == (5, 5)
    assert np.all(valid[np.tril_indices(5)] > 0.5)  # every learned two-class task above chance
    assert np.all(valid[np.triu_indices(5, 1)] == 0)  # nothing recorded before a task is trained
    assert not np.array_equal(valid, results.acc_matrix())  # another split, not a copy of the test
    # the best-validation-loss weights are restored after a task: its entry is that epoch's accuracy
    best = min(results.history[4], key=lambda row: row["valid_loss"])
    assert valid[4, 4] == pytest.approx(best["valid_acc"], abs=1e-9)
    loaded = Results.load(next(Path(tiny_cfg.output_dir).glob("*/results.json")))
    assert loaded.valid_acc == results.valid_acc


def test_results_written_before_validation_accuracy_still_load(tiny_cfg):
    results = run_experiment(tiny_cfg, save=False)
    data = results.to_dict()
    del data["valid_acc"]
    old = Results.from_dict(data)
    assert old.valid_acc_matrix() is None and old.acc == results.acc


def test_task_snapshots_keep_the_weights_after_every_task(tiny_cfg):
    from dwa_core.experiment import snapshot_path

    cfg = tiny_cfg.replace(task_snapshots=True)
    assert cfg.key() == tiny_cfg.key()  # where the weights go, not what is computed
    results = run_experiment(cfg)
    run_dir = next(Path(cfg.output_dir).iterdir())
    states = [torch.load(snapshot_path(run_dir, t)) for t in range(5)]
    first = next(k for k in states[0] if k.endswith("weight"))
    assert not torch.equal(states[0][first], states[4][first])  # sgd moved the shared weights
    assert results.finished and not snapshot_path(run_dir, 5).exists()
