"""Resume and results files (issue 12): resume compares only what changes the numbers, a damaged
results.json is rebuilt, Results.load is strict, the run folder is locked, failed writes clean up
and name the file, a damaged checkpoint names its path, results.json is 0644."""

import dataclasses
import errno
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from dwa_core import Results, run_experiment
from dwa_core import results as results_module
from dwa_core.experiment import CHECKPOINT, LOCK, CheckpointError, RunDirInUseError
from dwa_core.results import ResultsError, WriteError


@pytest.fixture
def short_cfg(tiny_cfg):
    return tiny_cfg.replace(max_tasks=2, train={"epochs": 1})


def run_dir_of(cfg) -> Path:
    return Path(cfg.output_dir) / cfg.run_name()


def test_moved_folder_other_device_or_data_dir_still_resume(short_cfg, tmp_path):
    first = run_experiment(short_cfg)
    moved = tmp_path / "moved"
    shutil.copytree(short_cfg.output_dir, moved)
    for changes in ({"output_dir": str(moved)}, {"output_dir": str(moved) + "/"},
                    {"output_dir": str(moved), "device": "cpu", "data_dir": str(tmp_path / "d"),
                     "download": True}):
        cfg = short_cfg.replace(**changes)
        trained = []
        again = run_experiment(cfg, on_epoch=lambda t, e, row, trained=trained: trained.append(t))
        assert trained == [] and again.acc == first.acc  # resumed: nothing trained again
        assert again.config["output_dir"] == changes["output_dir"]


def test_checkpoint_of_other_settings_names_the_fields_and_never_says_remove(short_cfg):
    run_experiment(short_cfg)
    path = run_dir_of(short_cfg) / CHECKPOINT
    state = torch.load(path, weights_only=False)
    state["results"]["config"]["train"]["lr"] = 0.5
    state["results"]["config"]["seed"] = 7
    torch.save(state, path)
    with pytest.raises(CheckpointError) as caught:
        run_experiment(short_cfg)
    message = str(caught.value)
    assert "seed: 7 -> 0" in message and "train.lr: 0.5 -> 0.1" in message
    assert "remove" not in message and "delete" not in message and str(path) in message


def test_damaged_results_json_is_rebuilt_from_the_checkpoint(short_cfg):
    first = run_experiment(short_cfg)
    path = run_dir_of(short_cfg) / "results.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # truncated
    with pytest.raises(ResultsError):
        Results.load(path)
    run_experiment(short_cfg)
    assert Results.load(path).acc == first.acc


def valid_results_dict():
    return Results.empty({"seed": 0}, ["a", "b"], [2, 2], "cpu").to_dict()


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("completed_tasks"), "missing completed_tasks"),
    (lambda d: d.pop("versions"), "missing versions"),
    (lambda d: d.update(colour="blue"), "unknown colour"),
    (lambda d: d.update(completed_tasks=3), r"completed_tasks must be an integer in 0..2, got 3"),
    (lambda d: d.update(completed_tasks=True), "completed_tasks must be an integer"),
    (lambda d: d.update(task_classes=[2]), "task_classes must have 2 entries"),
])
def test_results_load_is_strict_and_names_the_file(tmp_path, change, message):
    data = valid_results_dict()
    change(data)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=message) as caught:
        Results.load(path)
    assert str(caught.value).startswith(str(path))


def test_results_load_keeps_the_recorded_versions(tmp_path):
    data = valid_results_dict()
    data["versions"] = {"torch": "0.0-recorded"}
    (tmp_path / "r.json").write_text(json.dumps(data))
    assert Results.load(tmp_path / "r.json").versions == {"torch": "0.0-recorded"}


def test_a_second_run_on_the_same_folder_is_told_it_is_in_use(short_cfg):
    import fcntl

    run_dir = run_dir_of(short_cfg)
    run_dir.mkdir(parents=True)
    with open(run_dir / LOCK, "a") as held:  # another run holds the folder
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RunDirInUseError, match=f"{run_dir} is in use by another run"):
            run_experiment(short_cfg)
    run_experiment(short_cfg)  # released: runs


def test_disk_full_names_the_file_and_leaves_no_temporaries(short_cfg, monkeypatch):
    real_open = open

    class FullFile:
        def __init__(self, path, mode):
            self.file = real_open(path, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(results_module, "open", FullFile, raising=False)
    with pytest.raises(WriteError) as caught:
        run_experiment(short_cfg)
    run_dir = run_dir_of(short_cfg)
    assert str(caught.value) == f"could not write {run_dir / CHECKPOINT}: No space left on device"
    assert caught.value.filename == str(run_dir / CHECKPOINT)
    assert not list(run_dir.glob("*.tmp"))  # (the folder itself is gone: nothing was written)


@pytest.mark.parametrize("keep", [0.0, 0.5])
def test_empty_or_truncated_checkpoint_names_its_path(short_cfg, keep):
    run_experiment(short_cfg)
    path = run_dir_of(short_cfg) / CHECKPOINT
    data = path.read_bytes()
    path.write_bytes(data[: int(keep * len(data))])
    with pytest.raises(CheckpointError, match=f"checkpoint {path} is unreadable"):
        run_experiment(short_cfg)


def test_run_files_have_the_mode_of_new_files(short_cfg):
    old = os.umask(0o022)
    try:
        run_experiment(short_cfg)
    finally:
        os.umask(old)
    run_dir = run_dir_of(short_cfg)
    for name in ("results.json", CHECKPOINT, "acc.txt"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o644, name


def test_results_save_round_trip(tmp_path):
    results = Results.empty({"seed": 0}, ["a"], [2], "cpu")
    results.acc[0][0], results.completed_tasks = 0.75, 1
    loaded = Results.load(results.save(tmp_path / "r.json"))
    assert dataclasses.asdict(loaded) == dataclasses.asdict(results)
    np.testing.assert_array_equal(loaded.acc_matrix(), [[0.75]])


def test_load_run_rebuilds_damaged_results_from_the_checkpoint(short_cfg):
    from dwa_core.experiment import load_run

    first = run_experiment(short_cfg)
    run_dir = run_dir_of(short_cfg)
    (run_dir / "results.json").write_text("{")
    assert load_run(run_dir).acc == first.acc
    assert Results.load(run_dir / "results.json").acc == first.acc  # rewritten
    (run_dir / "results.json").write_text("")
    (run_dir / CHECKPOINT).write_bytes(b"")
    with pytest.raises(ResultsError, match=f"{run_dir / 'results.json'}.*checkpoint {run_dir / CHECKPOINT}"):
        load_run(run_dir)
