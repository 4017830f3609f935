"""scripts/regenerate.py: after a numerics bump it remakes every committed data file, in an order where
each command finds its inputs; the commands that name run folders are rebuilt for the new numerics.
Nothing is run here: the plan is checked against the commands the committed files record, and
`--run`'s order against stand-in commands."""

import importlib.util
import json
import shlex
import sys
from pathlib import Path

import pytest

from dwa_core import numerics

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def regenerate():
    spec = importlib.util.spec_from_file_location("regenerate", ROOT / "scripts" / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["regenerate"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("regenerate", None)


def _recorded_run_dirs(path: str) -> list[str]:
    command = json.loads((ROOT / path).read_text())["command"]
    return [word for word in command.split() if word.startswith("results/") and word.count("/") == 2]


def _step(steps, output: str):
    return next(s for s in steps if output in s.outputs)


def _command_run_dirs(step) -> list[str]:
    return [a for argv in step.commands for a in argv if a.startswith("results/") and a.count("/") == 2]


def test_every_data_file_has_one_step_and_nothing_is_stale_now(regenerate):
    steps = regenerate.plan()
    outputs = [p for s in steps for p in s.outputs]
    assert sorted(outputs) == sorted(regenerate.data_files()) and len(outputs) == len(set(outputs))
    assert len(outputs) > 20
    assert regenerate.stale_steps(steps) == []


def test_rebuilt_commands_name_the_run_folders_the_files_record(regenerate):
    steps = regenerate.plan()
    split = _step(steps, "tables/dwa-diagnosis-split-fmnist.json")
    assert _command_run_dirs(split) == _recorded_run_dirs("tables/dwa-diagnosis-split-fmnist.json")
    assert len(_command_run_dirs(split)) == 30
    mixture = _step(steps, "tables/dwa-diagnosis-mixture-offline.json")
    assert _command_run_dirs(mixture) == _recorded_run_dirs("tables/dwa-diagnosis-mixture-offline.json")
    labels = [argv[i + 1] for argv in mixture.commands for i, a in enumerate(argv) if a == "--label"]
    # made from the chosen point: mask_start 0.2 at the protocol's lr, the only parameter it changes
    assert labels == ["dwa mask_start=0.2"] * 3
    fig7 = _step(steps, "figures/fig7_embedding_pca_mixture-offline.json")
    assert _command_run_dirs(fig7) == _recorded_run_dirs("figures/fig7_embedding_pca_mixture-offline.json")


def test_after_a_bump_everything_is_remade_in_order_from_new_run_folders(regenerate, monkeypatch):
    monkeypatch.setattr(numerics, "VERSION", numerics.VERSION + 1)
    steps = regenerate.stale_steps(regenerate.plan())
    titles = [s.title for s in steps]
    assert titles[:3] == [f"comparison tables/{name}.json" for name in
                          ("compare-mixture-offline", "compare-permuted-fmnist", "compare-split-fmnist")]
    assert titles[-1] == "the README's Measured block"
    order = {p: i for i, s in enumerate(steps) for p in s.outputs}
    # the diagnoses read the runs the comparisons and the sweep made; the figures read the diagnosis
    assert order["tables/dwa-diagnosis-split-fmnist.json"] < order["figures/dwa_ablations_split-fmnist.json"]
    assert order["tables/compare-mixture-offline.json"] < order["tables/dwa-diagnosis-mixture-offline.json"]
    split = _step(steps, "tables/dwa-diagnosis-split-fmnist.json")
    assert shlex.join(split.commands[0][1:]).startswith("-m dwa_core sweep dwa-ablations-split-fmnist")
    new_dirs = _command_run_dirs(split)
    assert len(new_dirs) == 30 and not set(new_dirs) & set(
        _recorded_run_dirs("tables/dwa-diagnosis-split-fmnist.json"))  # the folder names hold the version


def test_run_plans_again_after_every_step_and_ends_with_the_readme_block(regenerate, monkeypatch):
    """--run builds each step's commands after the steps before it ran (a remade comparison may choose
    another point, whose run folders the mixture diagnosis then reads), ends with the steps that make
    no data file, and stops when a step leaves its outputs stale."""
    Step = regenerate.Step
    current, ran = set(), []
    plans = {"a": [["make", "a"]], "b": [["make", "b", "from", "old"]]}

    def plan():
        return [Step("a", ["a.json"], plans["a"]), Step("b", ["b.json"], plans["b"]),
                Step("block", [], [["block"]])]

    def run(argv, **kwargs):
        ran.append(argv)
        if argv[:2] == ["make", "a"]:
            plans["b"] = [["make", "b", "from", "new"]]  # what step a remade changes step b's command
        if argv[0] == "make":
            current.add(f"{argv[1]}.json")

    monkeypatch.setattr(regenerate, "plan", plan)
    monkeypatch.setattr(regenerate, "_stale", lambda path: path not in current)
    monkeypatch.setattr(regenerate.subprocess, "run", run)
    regenerate.run_all()
    assert ran == [["make", "a"], ["make", "b", "from", "new"], ["block"]]

    current.clear()
    ran.clear()
    monkeypatch.setattr(regenerate.subprocess, "run", lambda argv, **kwargs: ran.append(argv))  # no file made
    with pytest.raises(SystemExit, match="a: its commands ran, and a.json are still stale"):
        regenerate.run_all()
    assert ran == [["make", "a"]]


def test_a_remade_comparison_that_chose_another_point_gets_that_points_label(regenerate, monkeypatch):
    """The mixture diagnosis follows the point the remade comparison chose: its runs and its label
    (a label carried over from the old file would name the old point on the new runs)."""
    read = regenerate.compare.read_data

    def other_choice(path):
        data = read(path)
        if Path(path).name == "compare-mixture-offline.json":
            row = next(r for r in data["rows"] if r["approach"] == "dwa")
            row["chosen"] = {**row["chosen"], "train.lr": 0.03}
        return data

    dirs, label = regenerate._mixture_dwa_point()
    monkeypatch.setattr(regenerate.compare, "read_data", other_choice)
    other_dirs, other_label = regenerate._mixture_dwa_point()
    assert label == "dwa mask_start=0.2" and other_label == "dwa mask_start=0.2, lr=0.03"
    assert len(other_dirs) == 3 and set(other_dirs).isdisjoint(dirs)
    mixture = _step(regenerate.plan(), "tables/dwa-diagnosis-mixture-offline.json")
    assert [a for a in mixture.commands[0] if a.startswith("dwa ")] == [other_label] * 3
