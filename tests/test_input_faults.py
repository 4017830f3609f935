"""Bad input and faults of issue 21, one section per kind: every entry point validates before any
work, no user-given name escapes its folder, nothing half-written survives, one unreadable run
never stops an aggregation."""

import dataclasses
import json
import math
import os

import pytest

from dwa_core import ExperimentConfig, approaches, data, models
from dwa_core.approaches.base import Approach
from dwa_core.cli import main
from dwa_core.config import ConfigError


@pytest.fixture
def no_training(monkeypatch):
    """Training is a test failure: the error must come before it."""
    def fit(self, *args, **kwargs):
        raise AssertionError("training started")
    monkeypatch.setattr(Approach, "fit", fit)


def run_cli(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err.strip()


# ---- kind 1: every approach's Params validates itself, one rule for every field -------------------
def _params_fields():
    for name in approaches.names():
        for f in dataclasses.fields(approaches.get(name).Params):
            yield name, f


@pytest.mark.parametrize("approach, field", [(a, f.name) for a, f in _params_fields()])
def test_every_params_field_rejects_a_value_of_the_wrong_type(approach, field):
    """A value no declared type accepts is a ConfigError naming the field, built directly (the
    Python API), not only through ExperimentConfig: the rule covers fields added later too."""
    with pytest.raises(ConfigError, match=rf"approach_params\.{field}: "):
        approaches.get(approach).Params(**{field: object()})


@pytest.mark.parametrize("approach, field, value, message", [
    ("hat", "s_max", "x", "a number"), ("hat", "s_max", math.inf, "a finite number"),
    ("hat", "c", math.inf, "a finite number"), ("dwa", "lamb_sparsity", "x", "a number"),
    ("lwf", "lamb", "x", "a number"), ("lfl", "lamb", "x", "a number"),
    ("pathnet", "generations", "x", "an integer"), ("pathnet", "generations", 2.5, "an integer"),
    ("dwa", "use_anchor_first", "zz", "true or false"),
    ("random", "latest_task_labels", "zz", "true or false"), ("lfl", "reduction", "zz", "one of"),
    ("hat", "s_max", 0.5, "a number >= 1"), ("pathnet", "generations", 0, "an integer >= 1"),
])
def test_params_built_directly_are_validated(approach, field, value, message):
    with pytest.raises(ConfigError, match=rf"approach_params\.{field}: must be {message}"):
        approaches.get(approach).Params(**{field: value})


def test_params_built_directly_are_typed_as_declared():
    params = approaches.get("hat").Params(s_max="100", c="1")
    assert (params.s_max, params.c) == (100.0, 1.0) and type(params.s_max) is float
    assert approaches.get("dwa").Params(use_anchor_first="true").use_anchor_first is True


@pytest.mark.parametrize("benchmark", ["split-digits", "split-fmnist", "pmnist", "cifar", "mixture"])
def test_benchmark_params_built_directly_are_validated(benchmark):
    with pytest.raises(ConfigError, match=r"benchmark_params\.per_class: must be"):
        data.get_spec(benchmark).Params(per_class="many")


# ---- kind 7: network parameters are validated like every other field --------------------------------
def _shape(name):
    return (1, 8, 8) if name.startswith("mlp") else (3, 32, 32)


@pytest.mark.parametrize("name, params, message", [
    ("mlp", {"hidden": 0}, "hidden: must be an integer >= 1"),
    ("mlp", {"layers": -1}, "layers: must be an integer >= 1"),
    ("mlp", {"dropout": 1.5}, "dropout: must be a number in [0, 1)"),
    ("mlp-hat", {"hidden": 0}, "hidden: must be an integer >= 1"),
    ("mlp-hat", {"layers": 0}, "layers: must be an integer in [1, 3]"),
    ("mlp-dwa", {"hidden": 0}, "hidden: must be an integer >= 1"),
    ("mlp-dwa", {"processor_feats": [0, 5]}, "processor_feats: must be an integer >= 1"),
    ("mlp-dwa", {"emb_size": -1}, "emb_size: must be an integer >= 0"),
    ("mlp-dwa", {"hiden": 10}, "unknown hiden"),
    ("mlp-pathnet", {"modules": 0}, "modules: must be an integer >= 1"),
    ("mlp-pathnet", {"active": 20}, "active: must be in 1..modules"),
    ("mlp-progressive", {"hidden": -3}, "hidden: must be an integer >= 1"),
    ("alexnet", {"fc_units": 0}, "fc_units: must be an integer >= 1"),
    ("alexnet-hat", {"fc_units": 0}, "fc_units: must be an integer >= 1"),
    ("alexnet-dwa", {"fc_units": 0}, "fc_units: must be an integer >= 1"),
    ("alexnet-pathnet", {"width_factor": 0}, "width_factor: must be a number > 0"),
    ("alexnet-progressive", {"width_factor": -1}, "width_factor: must be a number > 0"),
])
def test_impossible_network_sizes_are_config_errors(name, params, message):
    arch, _, family = name.partition("-")
    import re

    with pytest.raises(ConfigError, match=re.escape(message)):
        models.build(arch, family or "plain", _shape(name), [2, 2], params)


def test_network_sizes_are_checked_before_any_data_is_loaded(monkeypatch, capsys, tmp_path):
    from dwa_core.experiment import validate

    def load(*args, **kwargs):
        raise AssertionError("data loaded")
    monkeypatch.setattr(data, "load_benchmark", load)
    for network in ("auto", "mlp"):
        with pytest.raises(ConfigError, match=r"network_params \(mlp-hat\)\.hidden: must be an integer >= 1"):
            validate(ExperimentConfig(approach="hat", network=network, network_params={"hidden": 0}))
    code, err = run_cli(capsys, "run", "--network-param", "hidden=0", "--output-dir", str(tmp_path))
    assert code == 2 and err == "error: network_params (mlp).hidden: must be an integer >= 1, got 0"
    assert not any(tmp_path.iterdir())  # nothing created


# ---- kind 5: a user-given name is one path component ------------------------------------------------
@pytest.mark.parametrize("name", ["x/../../etc", "../x", "..", ".", "a\\b", "a\nb"])
def test_a_run_name_that_could_leave_the_output_folder_is_refused(name, capsys, tmp_path):
    with pytest.raises(ConfigError, match="name: must be one folder-name component"):
        ExperimentConfig(name=name)
    out = tmp_path / "out"
    code, err = run_cli(capsys, "run", "--name", name, "--output-dir", str(out), "--epochs", "1")
    assert code == 2 and err.startswith("error: name: must be one folder-name component")
    assert list(tmp_path.iterdir()) == []  # nothing written, next to out or inside it


def test_a_sweep_name_that_could_leave_the_results_folder_is_refused(tmp_path):
    from dwa_core.sweep import load_definition

    path = tmp_path / "s.toml"
    path.write_text('[sweep]\nname = "../../escape"\n[base]\napproach = "sgd"\n')
    with pytest.raises(ConfigError, match=r"\[sweep\] name: must be one folder-name component"):
        load_definition(path)


# ---- kind 8 (and its sibling): nothing half-written or empty survives a run --------------------------
def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_taking_the_lock_removes_the_temporaries_of_killed_writes(tiny_cfg, monkeypatch):
    from dwa_core import runs
    from dwa_core.experiment import run_experiment

    cfg = tiny_cfg.replace(max_tasks=1, train={"epochs": 1})
    where = runs.run_dir(cfg)
    where.mkdir(parents=True)
    stale = [where / f"checkpoint.pt.{_dead_pid()}.tmp", where / f"results.json.{os.getpid()}.tmp"]
    live = where / f"results.json.{os.getppid()}.tmp"  # another process, still writing
    for path in (*stale, live):
        path.write_bytes(b"half a file")
    run_experiment(cfg)
    assert not any(p.exists() for p in stale) and live.exists()
    assert (where / "results.json").is_file()


def test_a_run_that_fails_in_its_setup_leaves_no_run_folder(tiny_cfg, monkeypatch):
    from dwa_core import runs
    from dwa_core.experiment import run_experiment

    def load(*args, **kwargs):
        raise FileNotFoundError("no data")
    monkeypatch.setattr(data, "load_benchmark", load)
    with pytest.raises(FileNotFoundError):
        run_experiment(tiny_cfg)
    assert not runs.run_dir(tiny_cfg).exists() and not runs.run_dir(tiny_cfg).parent.exists()
    runs.run_dir(tiny_cfg).parent.mkdir()  # an output folder that was there stays
    with pytest.raises(FileNotFoundError):
        run_experiment(tiny_cfg)
    assert not runs.run_dir(tiny_cfg).exists() and runs.run_dir(tiny_cfg).parent.is_dir()


# ---- kind 2: every run of a sweep or comparison definition is validated before the first run --------
SWEEP = """
[sweep]
seeds = [0]
references = false
[base]
benchmark = "split-digits"
benchmark_params = { per_class = 5 }
train = { epochs = 1 }
[[variants]]
approach = "sgd"
[[variants]]
"""


@pytest.mark.parametrize("variant, message", [
    ('approach = "hatt"', "unknown approach 'hatt'"),
    ('approach = "hat"\napproach_params = { s_maxx = 3 }',
     r"approach_params \(hat\): unknown parameter\(s\) s_maxx"),
    ('approach = "hat"\napproach_params = { s_max = "x" }',
     r"approach_params \(hat\)\.s_max: must be a number"),
    ('approach = "sgd"\nnetwork = "resnet"', "network: 'sgd' needs a 'plain' network; 'resnet' has none"),
    ('approach = "sgd"\nnetwork_params = { hidden = 0 }',
     r"network_params \(mlp\)\.hidden: must be an integer >= 1"),
    ('approach = "sgd"\nbenchmark_params = { per_class = 0 }',
     "benchmark_params.per_class: must be an integer >= 1"),
])
def test_a_bad_variant_fails_the_dry_run_and_trains_nothing(variant, message, tmp_path, capsys, no_training):
    path = tmp_path / "bad.toml"
    path.write_text(SWEEP + variant + "\n")
    out = tmp_path / "out"
    for extra in (["--dry-run"], []):
        code, err = run_cli(capsys, "sweep", str(path), "--output-dir", str(out), *extra)
        assert code == 2 and err.startswith(f"error: {path}: run split-digits_"), err
        assert len(err.splitlines()) == 1 and __import__("re").search(message, err), err
    assert not out.exists()


def test_a_bad_comparison_candidate_is_an_error_before_training(tmp_path, no_training):
    from dwa_core import compare

    path = tmp_path / "c.toml"
    path.write_text(SWEEP.replace("references = false\n", "") + 'approach = "ewc"\n'
                    'grid = { "approach_params.lamb" = [1.0, -1.0] }\n[select]\nfinal_seeds = [1, 2]\n')
    message = r"c.toml: run split-digits_ewc_0_\w+: approach_params.lamb: must be a number >= 0"
    with pytest.raises(ConfigError, match=message):
        compare.run_comparison(path, tmp_path / "out")


# ---- kind 3: a comparison data file is input: its shape is checked ----------------------------------
def _committed_data():
    from dwa_core.compare import TABLES_DIR

    return json.loads((TABLES_DIR / "compare-split-fmnist.json").read_text())


def _drop(data, dotted):
    *parents, last = dotted.split(".")
    for key in parents:
        data = data[int(key)] if key.isdigit() else data[key]
    del data[last]


@pytest.mark.parametrize("dropped, where", [
    ("name", "name: missing"), ("protocol.train", "protocol.train: missing"),
    ("rows.0.test.rho", "rows[0].test.rho: missing"), ("rows.1.candidates.0.valid_score",
                                                       "rows[1].candidates[0].valid_score: missing"),
    ("cpu_seconds", "cpu_seconds: missing"),
    ("references.joint.avg_acc", "references.joint.avg_acc: missing"),
])
def test_compare_from_an_incomplete_data_file_names_the_file_and_the_key(dropped, where, tmp_path, capsys):
    data = _committed_data()
    _drop(data, dropped)
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data))
    code, err = run_cli(capsys, "compare", "--from-data", str(path))
    assert code == 2 and err == f"error: {path}: not complete comparison data (compare.write_data): {where}"


def test_compare_from_a_data_file_of_the_wrong_shape(tmp_path, capsys):
    path = tmp_path / "data.json"
    for text, problem in (("[1, 2]", "the file: must be a table, got list"),):
        path.write_text(text)
        code, err = run_cli(capsys, "compare", "--from-data", str(path))
        assert code == 2 and err.endswith(problem)
    data = _committed_data()
    data["rows"] = []
    path.write_text(json.dumps(data))
    assert run_cli(capsys, "compare", "--from-data", str(path)) == (2, f"error: {path}: not complete "
                                                                      "comparison data (compare.write_data): "
                                                                      "rows: must be a non-empty list")
    data = _committed_data()
    data["rows"][0]["test"]["avg_acc"]["mean"] = "high"
    path.write_text(json.dumps(data))
    assert run_cli(capsys, "compare", "--from-data", str(path))[1].endswith(
        "rows[0].test.avg_acc.mean: must be a number, got 'high'")


def test_diagnosis_from_an_incomplete_data_file_names_the_file_and_the_column(tmp_path, capsys):
    from dwa_core import cli
    from dwa_core.compare import TABLES_DIR

    data = json.loads((TABLES_DIR / "dwa-diagnosis-split-fmnist.json").read_text())
    del data["rows"][3]["mask_drift"]
    path = tmp_path / "diagnosis.json"
    for rows, problem in ((data["rows"], "rows[3]: missing mask_drift"),
                          ([], "rows: must be a non-empty list"), ([1], "rows[0]: must be a table")):
        path.write_text(json.dumps({"rows": rows}))
        assert cli.main(["diagnosis", "--from-data", str(path)]) == 2
        assert capsys.readouterr().err.strip() == f"error: {path}: not a diagnosis data file ({problem})"


# ---- kind 4: every output path is checked before any work ------------------------------------------
@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("")
    return path


@pytest.mark.parametrize("argv, message", [
    (["figures", "--out", "{f}"], "--out: {f} is a file, not a folder"),
    (["figures", "--out", "{f}/sub"], "--out: {f}/sub cannot be created: {f} is a file, not a folder"),
    (["figures", "--out", "{d}/figs", "--results-dir", "{f}"], "--results-dir: {f} is a file, not a folder"),
    (["sweep", "smoke-digits", "--output-dir", "{f}", "--dry-run"],
     "--output-dir: {f} is a file, not a folder"),
    (["sweep", "smoke-digits", "--output-dir", "{f}"], "--output-dir: {f} is a file, not a folder"),
    (["run", "--output-dir", "{f}"], "output_dir (--output-dir): {f} is a file, not a folder"),
    (["compare", "{c}", "--output-dir", "{f}"], "--output-dir: {f} is a file, not a folder"),
    (["compare", "{c}", "--output-dir", "{d}/runs", "--data", "{d}"], "--data: {d} is a folder, not a file"),
    (["compare", "{c}", "--output-dir", "{d}/runs", "--data", "{f}/x.json"],
     "--data: {f}/x.json cannot be written: {f} is a file, not a folder"),
    (["compare", "{c}", "--output-dir", "{d}/runs", "--data", "{d}/x.json", "--readme", "{f}"],
     "--readme: {f}: no <!-- comparison:c start --> ... <!-- comparison:c end --> block to fill"),
    (["compare", "{c}", "--output-dir", "{d}/runs", "--data", "{d}/x.json", "--readme", "{d}/none.md"],
     "--readme: {d}/none.md cannot be read (No such file or directory)"),
])
def test_an_output_that_cannot_be_written_is_an_error_before_training(argv, message, a_file, tmp_path, capsys,
                                                                      no_training):
    definition = tmp_path / "c.toml"
    definition.write_text(SWEEP.replace("references = false\n", "") +
                          'approach = "ewc"\n[select]\nfinal_seeds = [1, 2]\n')
    names = {"f": a_file, "d": tmp_path, "c": definition}
    code, err = run_cli(capsys, *(a.format(**names) for a in argv))
    assert (code, err) == (2, "error: " + message.format(**names))


def test_python_entry_points_check_their_outputs_before_training(a_file, no_training):
    from dwa_core.figures import make_figures
    from dwa_core.sweep import run_sweep

    with pytest.raises(ConfigError, match=f"out_dir: {a_file} is a file, not a folder"):
        make_figures("smoke", a_file)
    with pytest.raises(ConfigError, match=f"output_dir: {a_file} is a file, not a folder"):
        run_sweep([ExperimentConfig()], a_file)


def test_diagnosis_checks_its_output_before_reading_any_run(tmp_path, capsys):
    from dwa_core import cli

    assert cli.main(["diagnosis", str(tmp_path / "no-run"), "--output", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: --output: {tmp_path} is a folder, not a file"


def test_explorer_and_notebook_parameters_check_the_results_folder(a_file, no_training):
    from dwa_core import widgets
    from dwa_core.walkthrough import ParameterError, check_parameters

    ex = widgets.Explorer(approach="sgd", results_dir=a_file)
    assert ex.run() is None and f"error: results_dir: {a_file} is a file, not a folder" in ex.status.value
    ex = widgets.Explorer(approach="sgd")
    ex.forms["network"].controls["hidden"].value = 0  # kind 7, from the explorer
    assert ex.run() is None and "network_params (mlp).hidden: must be an integer &gt;= 1" in ex.status.value
    with pytest.raises(ParameterError, match=f"results_dir: {a_file} is a file, not a folder"):
        check_parameters("smoke", [0], results_dir=str(a_file))


# ---- kind 6: one unreadable results.json never stops an aggregation ----------------------------------
def _finished(cfg, out, acc):
    from dwa_core import runs
    from dwa_core.results import Results

    results = Results(cfg.to_dict(), ["a", "b"], [2, 2], acc, [[0.0, 0.0], [0.0, 0.0]], completed_tasks=2)
    results.save(runs.run_dir(cfg, out) / "results.json")
    return runs.run_dir(cfg, out)


def _old_format(where):
    """results.json as an older version wrote it: a config field since renamed."""
    path = where / "results.json"
    values = json.loads(path.read_text())
    values["config"]["train"]["patience"] = values["config"]["train"].pop("lr_patience")
    path.write_text(json.dumps(values))
    return path


def test_an_old_format_results_file_is_rebuilt_or_skipped_and_the_rest_aggregated(tmp_path, capsys):
    import torch

    from dwa_core import aggregate, sweep

    definition = tmp_path / "three.toml"
    definition.write_text('[sweep]\nseeds = [0, 1, 2]\nreferences = false\n[base]\nmax_tasks = 2\n'
                          '[grid]\napproach = ["sgd"]\n')
    out = tmp_path / "out"
    cfgs = sweep.load_definition(definition).configs
    dirs = [_finished(c, out, [[0.9, 0.0], [0.7, 0.9]]) for c in cfgs]
    old = _old_format(dirs[1])  # no checkpoint: skipped, named
    rebuilt = _old_format(dirs[2])  # a checkpoint of this version: rebuilt from it
    good = json.loads((dirs[0] / "results.json").read_text()) | {"config": cfgs[2].to_dict()}
    torch.save({"approach": {}, "rng": {}, "results": good}, dirs[2] / "checkpoint.pt")
    problems = []
    loaded = aggregate.load_results(out, None, problems)
    assert sorted(r.config["seed"] for r in loaded) == [0, 2]
    assert [p for p, _ in problems] == [old] and "unknown parameter(s) patience" in problems[0][1]
    assert json.loads(rebuilt.read_text())["config"]["train"]["lr_patience"] == 5  # repaired
    code = main(["sweep", str(definition), "--output-dir", str(out), "--aggregate-only"])
    err = capsys.readouterr().err
    assert code == 1 and f"skipped (unreadable results): {old}: ResultsError: {old}: a config" in err
    assert len((out / "runs.csv").read_text().splitlines()) == 1 + 2  # header + the readable runs


# ---- siblings: missing datasets all named; an error never lands on the progress bar's line ----------
@pytest.mark.parametrize("benchmark, names", [
    ("mixture", ["facescrub", "mnist", "cifar100", "not_mnist", "svhn", "cifar10", "traffic_signs",
                 "fashion_mnist"]),
    ("cifar", ["cifar10", "cifar100"]),
])
def test_every_missing_dataset_of_a_benchmark_is_named_at_once(benchmark, names, tmp_path, monkeypatch,
                                                               capsys):
    from dwa_core.data import sources

    monkeypatch.setattr(sources, "SYSTEM_DIRS", (tmp_path / "system",))
    code, err = run_cli(capsys, "run", "--benchmark", benchmark, "--data-dir", str(tmp_path / "data"),
                        "--output-dir", str(tmp_path / "out"))
    assert code == 2 and err.startswith(f"error: {len(names)} of {len(names)} datasets not found:")
    assert [line.split("'")[1] for line in err.splitlines() if "not found; searched:" in line] == names
    assert err.count("to get it: pass --set download=true") == len(names)
    assert not (tmp_path / "out").exists()


def test_an_error_during_training_is_printed_after_the_progress_bar_closed(tmp_path, capsys, monkeypatch):
    import errno

    from dwa_core import experiment
    from dwa_core.results import WriteError

    def full(*args, **kwargs):
        raise WriteError(errno.ENOSPC, "could not write checkpoint.pt: No space left on device",
                         "checkpoint.pt")
    monkeypatch.setattr(experiment, "write_checkpoint", full)
    events = []
    import tqdm.auto

    from dwa_core import cli

    class Bar(tqdm.auto.tqdm):
        def close(self):
            events.append(f"closed {self.desc}")
            super().close()
    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    monkeypatch.setattr(cli, "print", lambda *a, **k: (events.append(" ".join(map(str, a))), print(*a, **k)),
                        raising=False)
    code, err = run_cli(capsys, "run", "--output-dir", str(tmp_path), "--epochs", "1", "--max-tasks", "1",
                        "--benchmark-param", "per_class=5", "--no-figure")
    assert code == 1 and events[:2] == ["closed task 0",
                                        "error: could not write checkpoint.pt: No space left on device"]


def test_a_per_class_above_what_a_class_has_is_said_once(monkeypatch, caplog):
    import torch

    from dwa_core.data import common
    from dwa_core.data.types import Split

    monkeypatch.setattr(common, "_CAPPED", set())
    split = Split(torch.arange(5.0)[:, None], torch.tensor([0, 0, 1, 1, 1]))
    with caplog.at_level("WARNING", logger="dwa_core.data.common"):
        kept = [common.subsample_per_class(split, 1000, seed) for seed in (0, 1)]
    assert all(len(k.y) == 5 for k in kept)  # every sample kept
    assert [r.getMessage() for r in caplog.records] == [
        "benchmark_params.per_class=1000 is more than some classes have (e.g. 2 samples): "
        "those classes keep all of theirs"]
