"""The explorer beyond its controls (issue 22): tooltips carrying the field documentation, runs
labelled by what differs, data availability and the profile fallback, the mask panel, figure
export, config save/load, the command line, the epoch counter and resume."""

import html
import shlex
import tomllib

import numpy as np
import pytest

from dwa_core import approaches, cli, data, widgets
from dwa_core.fields import docs
from dwa_core.observers import Observer
from dwa_core.widgets import availability, labels, panels


def tiny(ex, epochs: int = 1):
    """A run of a few seconds: 10 images per class, `epochs` epochs."""
    ex.forms["benchmark"].controls["per_class"].value = "10"
    ex.forms["train"].controls["epochs"].value = epochs
    return ex


def test_every_control_carries_its_documentation_as_a_title():
    """The title that reaches the page is in the description's HTML (ipywidgets drops `tooltip` on a
    text box or dropdown that has a description): every field of every form has its own doc there."""
    for name in approaches.names():
        ex = widgets.Explorer(approach=name)
        for section, form in ex.forms.items():
            declared = docs(form.cls)
            for field, w in form.controls.items():
                assert declared.get(field), (name, section, field)  # documented
                title = f'title="{html.escape(declared[field], quote=True)}"'
                assert title in w.description and f">{field}</span>" in w.description, (section, field)
    assert "lr_schedule" in docs(widgets.Explorer().forms["train"].cls)


def test_labels_say_what_differs_in_the_controls_forms(tmp_path):
    ex = widgets.Explorer(approach="dwa", out_dir=tmp_path)
    first = ex.config()
    ex.params["curriculum"].value = "linear:4:0.2"
    ex.forms["train"].controls["lr"].value = 0.05
    assert labels.differences(ex.config(), first) == ["lr 0.05", "curriculum linear:4:0.2"]
    hat = widgets.Explorer(approach="hat").config()
    assert labels.differences(first, hat) == ["approach dwa"]  # no use_stem: HAT's MLP has none
    assert labels.run_labels([hat, first]) == ["1: hat", "2: approach dwa"]


def test_benchmarks_without_data_are_marked_and_explained(tmp_path):
    assert set(availability.NEEDS) == set(data.names())  # a new benchmark says what it reads
    options = {name: label for label, name in availability.dropdown_options(data.names(), tmp_path)}
    assert options["mnist2"] == "mnist2 (data missing)" and options["split-digits"] == "split-digits"
    ex = widgets.Explorer(benchmark="mnist2", approach="sgd", data_dir=str(tmp_path), out_dir=tmp_path)
    ex.matrix.outputs = ({"output_type": "display_data", "data": {"text/plain": "old"}, "metadata": {}},)
    assert ex.run() is None
    text = html.unescape(ex.status.value)
    assert "dataset 'mnist' not found; searched:" in text and str(tmp_path / "MNIST" / "raw") in text
    assert "expected files train-images-idx3-ubyte" in text and "data_dir" in text
    assert ex.matrix.outputs == ()  # the previous run's figures are gone


def test_profile_paper_falls_back_to_smoke_without_its_data(tmp_path, monkeypatch):
    ex = widgets.Explorer(profile="paper", data_dir=str(tmp_path))
    assert ex.profile == "smoke" and ex.benchmark.value == "split-digits"
    assert "profile 'paper' needs the mixture data" in html.unescape(ex.status.value)
    monkeypatch.setattr(availability, "missing", lambda *a, **k: [])  # as if the data were there
    cfg = widgets.Explorer(profile="paper", approach="hat").config()
    got = (cfg.benchmark, cfg.network, cfg.train.epochs, cfg.train.batch_size)
    assert got == ("mixture", "alexnet", 200, 64)
    with pytest.raises(ValueError, match="profile: must be one of"):
        widgets.Explorer(profile="fast")


@pytest.mark.parametrize("name", sorted(approaches.names()))
def test_cli_command_parses_to_the_same_config(name):
    ex = widgets.Explorer(approach=name)
    if name == "dwa":
        ex.params["curriculum"].value = ""  # None, against the default 'linear:100:0.2'
    cfg = ex.config()
    argv = shlex.split(ex.cli_command())
    assert argv[:4] == ["python", "-m", "dwa_core", "run"]
    parsed = cli.config_from_args(cli.build_parser().parse_args(argv[3:]))
    assert parsed.key() == cfg.key() and parsed.output_dir == cfg.output_dir


def test_config_saved_as_toml_loads_back_and_runs_from_the_cli(tmp_path):
    ex = widgets.Explorer(approach="dwa")
    ex.params["lamb_triplet"].value = 7.5
    ex.forms["train"].controls["lr_schedule"].value = "paper"
    ex.seed.value = 3
    cfg = ex.config()
    path = ex.save_config(tmp_path / "cfg.toml")
    values = tomllib.loads(path.read_text())
    assert values["approach_params"]["lamb_triplet"] == 7.5 and values["seed"] == 3
    other = widgets.Explorer(approach="hat")
    other.load_config(path)
    assert other.approach.value == "dwa" and other.config().key() == cfg.key()
    preset = cli.config_from_args(cli.build_parser().parse_args(["run", "--preset", str(path)]))
    assert preset.key() == cfg.key()


def test_mask_means_by_hand():
    intro = {0: {"name": "a", "masks": {"fc1.weight": np.array([[[-1.0, 0.5]], [[0.0, 0.5]]])}}}
    assert panels.mask_means(intro) == {"a": {"fc1.weight": 0.5}}


def test_embedding_note_by_hand():
    collapsed = {0: {"emb": np.ones((3, 2))}, 1: {"emb": np.ones((2, 2))}}
    assert panels.embedding_note(collapsed) == ("E: 100% of entries saturated, spread across samples 0.000"
                                                " - every input gets the same masks")
    alive = {0: {"emb": np.array([[0.5, 1.0], [-0.5, 0.0]])}}  # 1 of 4 saturated; stds 0.5 and 0.5
    assert panels.embedding_note(alive) == "E: 25% of entries saturated, spread across samples 0.500"


@pytest.mark.parametrize("approach, names", [("dwa", ["dwa_masks", "dwa_embedding"]), ("hat", ["hat_masks"]),
                                             ("sgd", [])])
def test_mask_panel_and_figure_export(approach, names, tmp_path):
    ex = tiny(widgets.Explorer(approach=approach, out_dir=tmp_path))
    assert ex.run() is not None, ex.status.value
    shown = [o for w in ex.panel.children for o in w.outputs if "image/png" in o["data"]]
    assert len(shown) == len(names)
    assert "task 5/5 · epoch 1/1 · about 0 s left" == ex.eta.value
    paths = ex.export_figures()
    stems = {p.stem for p in paths}
    assert stems == {f"explorer_{n}" for n in ["curves", "matrix", "overlay", *names]}
    assert all(p.stat().st_size > 0 for p in paths) and {p.suffix for p in paths} == {".png", ".svg"}


class StopAfter(Observer):
    """Asks for a stop at the first batch after `tasks` tasks are finished."""

    def __init__(self, tasks: int):
        self.tasks, self.done = tasks, 0

    def after_task(self, t, results):
        self.done = t + 1

    def stop_requested(self):
        return self.done >= self.tasks


def test_resume_continues_a_stopped_run_as_if_never_stopped(tmp_path):
    whole = tiny(widgets.Explorer(approach="ewc", out_dir=tmp_path / "a"), epochs=2).run()
    ex = tiny(widgets.Explorer(approach="ewc", out_dir=tmp_path / "b"), epochs=2)
    stop = StopAfter(2)
    ex.observers.append(stop)
    part = ex.run()
    assert part.completed_tasks == 2 and "Resume continues from task 3" in ex.status.value
    assert not ex.resume_button.disabled and ex.runs == []
    stop.tasks = 99
    resumed = ex.run(resume=True)
    assert resumed.completed_tasks == 5 and len(ex.runs) == 1 and ex.resume_button.disabled
    np.testing.assert_array_equal(resumed.acc_matrix(), whole.acc_matrix())
