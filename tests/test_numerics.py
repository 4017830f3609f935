"""Run identity includes the code (dwa_core.numerics): the digest guard, results record their
numerics, a run or checkpoint of other numerics is never reused, aggregation never mixes them, and
`compare --from-data` says when its data file is older than the code."""

import json
import logging
import shutil

import pytest

import dwa_core
from dwa_core import aggregate, compare, numerics, runs
from dwa_core.cli import main
from dwa_core.experiment import CheckpointError, run_experiment
from dwa_core.results import Results
from dwa_core.sweep import run_one


def test_numerically_relevant_sources_match_the_recorded_digest():
    current = numerics.source_digest()
    assert current == numerics.SOURCE_DIGEST, (
        "the numerically relevant sources changed (dwa_core.numerics.SOURCES); if numbers can change, "
        f"bump numerics.VERSION (now {numerics.VERSION}); then set SOURCE_DIGEST = '{current}'")


def test_digest_counts_code_not_docstrings_comments_or_formatting(tmp_path):
    (tmp_path / "models" / "kernels").mkdir(parents=True)
    (tmp_path / "metrics.py").write_text('"""Metrics."""\n\ndef f(x):\n    """Doc."""\n    return x + 1\n')
    (tmp_path / "models" / "kernels" / "k.c").write_text("int f(int x) { return x + 1; }\n")
    (tmp_path / "widgets.py").write_text("X = 1\n")  # not numerically relevant
    before = numerics.source_digest(tmp_path)
    (tmp_path / "metrics.py").write_text('"""Other words."""\ndef f(x):  # a comment\n    return (x+1)\n')
    (tmp_path / "widgets.py").write_text("X = 2\n")
    assert numerics.source_digest(tmp_path) == before
    (tmp_path / "metrics.py").write_text("def f(x):\n    return x + 2\n")
    assert numerics.source_digest(tmp_path) != before
    (tmp_path / "metrics.py").write_text('"""Metrics."""\n\ndef f(x):\n    """Doc."""\n    return x + 1\n')
    (tmp_path / "models" / "kernels" / "k.c").write_text("int f(int x) { return x + 2; }\n")
    assert numerics.source_digest(tmp_path) != before


def test_the_run_key_includes_the_numerics_version(tiny_cfg, monkeypatch):
    key = tiny_cfg.key()
    monkeypatch.setattr(numerics, "VERSION", numerics.VERSION + 1)
    assert tiny_cfg.key() != key


def test_results_record_their_numerics_and_older_files_load_as_unknown(tiny_cfg):
    cfg = tiny_cfg.replace(max_tasks=1)
    results = run_experiment(cfg)
    saved = json.loads((runs.run_dir(cfg) / "results.json").read_text())
    assert saved["numerics"] == {"version": numerics.VERSION, "package": dwa_core.__version__}
    del saved["numerics"]
    old = Results.from_dict(saved)
    assert old.numerics is None and old.acc == results.acc


def test_a_finished_run_is_not_reused_after_a_numerics_change(tiny_cfg, monkeypatch):
    cfg, out = tiny_cfg.replace(max_tasks=2), tiny_cfg.output_dir
    assert run_one(cfg.to_dict(), out)["status"] == "trained"
    assert run_one(cfg.to_dict(), out)["status"] == "cached"
    old_dir = runs.run_dir(cfg)
    monkeypatch.setattr(numerics, "VERSION", numerics.VERSION + 1)
    assert not runs.is_finished(old_dir)  # even a finished results.json of other numerics
    outcome = run_one(cfg.to_dict(), out)
    assert outcome["status"] == "trained"
    assert Results.load(runs.run_dir(cfg) / "results.json").numerics["version"] == numerics.VERSION


def test_a_results_file_without_numerics_is_not_finished(tiny_cfg):
    cfg = tiny_cfg.replace(max_tasks=1)
    run_experiment(cfg)
    path = runs.run_dir(cfg) / "results.json"
    data = json.loads(path.read_text())
    assert runs.is_finished(path.parent)
    del data["numerics"]
    path.write_text(json.dumps(data))
    assert not runs.is_finished(path.parent)


def test_resume_across_a_numerics_change_is_refused_naming_the_versions(tiny_cfg, monkeypatch):
    cfg = tiny_cfg.replace(max_tasks=2)
    run_experiment(cfg)
    old_dir, version = runs.run_dir(cfg), numerics.VERSION
    monkeypatch.setattr(numerics, "VERSION", version + 1)
    shutil.move(old_dir, runs.run_dir(cfg))  # its checkpoint now where the new numerics' run resumes
    with pytest.raises(CheckpointError, match=rf"numerics version {version} -> {version + 1}"):
        run_experiment(cfg)
    assert run_experiment(cfg, resume=False).numerics["version"] == version + 1


def test_aggregation_skips_runs_of_other_numerics_naming_the_file(tiny_cfg, monkeypatch, caplog):
    cfg = tiny_cfg.replace(max_tasks=1)
    run_experiment(cfg)
    assert len(aggregate.load_results(cfg.output_dir)) == 1
    monkeypatch.setattr(numerics, "VERSION", numerics.VERSION + 1)
    with caplog.at_level(logging.WARNING):
        assert aggregate.load_results(cfg.output_dir) == []
    assert "results.json" in caplog.text and "other numerics" in caplog.text


def _data_file(tmp_path, numerics_entry):
    data = compare.read_data(sorted(compare.TABLES_DIR.glob("compare-*.json"))[0])
    data.pop("numerics", None)
    if numerics_entry is not None:
        data["numerics"] = numerics_entry
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    return path, data


def test_compare_from_data_warns_when_the_file_is_older_than_the_code(tmp_path, capsys):
    path, data = _data_file(tmp_path, {"version": numerics.VERSION - 1, "package": "0.0.1"})
    assert main(["compare", "--from-data", str(path)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and data["command"] in err[0]
    assert f"numerics version {numerics.VERSION - 1} -> {numerics.VERSION}" in err[0]
    path, _ = _data_file(tmp_path, None)  # written before numerics were recorded
    assert main(["compare", "--from-data", str(path)]) == 0
    assert f"numerics version unknown -> {numerics.VERSION}" in capsys.readouterr().err
    path, _ = _data_file(tmp_path, numerics.identity())
    assert main(["compare", "--from-data", str(path)]) == 0
    assert capsys.readouterr().err == ""


def test_stale_data_files_lists_tables_and_figure_sidecars_of_other_numerics(tmp_path):
    (tmp_path / "tables").mkdir()
    (tmp_path / "figures").mkdir()
    (tmp_path / "tables" / "old.json").write_text(json.dumps({"rows": []}))
    (tmp_path / "tables" / "new.json").write_text(json.dumps({"numerics": numerics.identity()}))
    (tmp_path / "figures" / "fig.json").write_text(json.dumps({"config": {}, "command": ""}))
    (tmp_path / "figures" / "summary.json").write_text(json.dumps({"sgd": {}}))  # carries no config
    assert numerics.stale_data_files(tmp_path) == [
        f"tables/old.json: numerics version unknown -> {numerics.VERSION}",
        f"figures/fig.json: numerics version unknown -> {numerics.VERSION}"]


def test_the_environment_selects_the_numerics_and_a_bad_value_is_one_line_before_a_run(monkeypatch, tmp_path,
                                                                                       capsys):
    assert numerics.selected({}) == numerics.DEFAULT == 5
    assert numerics.selected({"DWA_CORE_NUMERICS": " 3 "}) == 3  # the previous default stays selectable
    # 4 was the next numerics before 5 (withdrawn: its code is gone), so it is refused like any other
    with pytest.raises(ValueError, match=r"^DWA_CORE_NUMERICS: must be one of 3, 5, got '4'$"):
        numerics.selected({"DWA_CORE_NUMERICS": "4"})
    monkeypatch.setenv("DWA_CORE_NUMERICS", "four")
    code = main(["run", "--approach", "sgd", "--benchmark", "split-digits", "--output-dir", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err == "error: DWA_CORE_NUMERICS: must be one of 3, 5, got 'four'\n"
    assert list(tmp_path.iterdir()) == []
    for version, other in ((3, 5), (5, 3)):  # what the benchmarks measure beside the running numerics
        monkeypatch.setattr(numerics, "VERSION", version)
        assert numerics.other() == other
        with numerics.using(other):
            assert numerics.VERSION == other and numerics.identity()["version"] == other
        assert numerics.VERSION == version
    with pytest.raises(ValueError, match="must be one of 3, 5, got 4"), numerics.using(4):
        pass
    assert numerics.VERSION == 5


def test_a_process_under_another_numerics_records_it(tmp_path):
    """DWA_CORE_NUMERICS=3 reaches a fresh process (a sweep worker, say): its runs record version 3
    and live in other folders than the default's (5)."""
    import os
    import subprocess
    import sys

    code = ("from dwa_core import numerics, runs; from dwa_core.config import ExperimentConfig; "
            "print(numerics.identity()['version'], runs.run_dir(ExperimentConfig(approach='sgd')).name)")
    names = {}
    for value in ("", "3"):
        env = {**os.environ, "DWA_CORE_NUMERICS": value}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                             check=True)
        version, name = out.stdout.split()
        names[int(version)] = name
    assert set(names) == {3, 5} and names[3] != names[5]


def test_committed_tables_and_figures_record_the_current_numerics():
    if numerics.VERSION != numerics.DEFAULT:
        pytest.skip(f"the committed files are of the default numerics ({numerics.DEFAULT}), this process "
                    f"runs {numerics.VERSION} (DWA_CORE_NUMERICS)")
    stale = numerics.stale_data_files()
    assert stale == [], "regenerate these data files with their commands:\n" + "\n".join(stale)


def test_a_sweep_worker_of_other_numerics_fails_the_run_instead_of_training_it(tiny_cfg, monkeypatch):
    """A Ray worker started without the driver's DWA_CORE_NUMERICS would train under its own numerics
    into another folder: run_one refuses, naming both versions, and trains nothing."""
    monkeypatch.setattr(numerics, "VERSION", 3)
    out = run_one(tiny_cfg.to_dict(), tiny_cfg.output_dir, 1, (), numerics_version=5)
    assert out["status"] == "failed"
    assert out["error"] == "this worker runs numerics 3, the sweep numerics 5: start the workers with " \
                           "DWA_CORE_NUMERICS=5"
    assert not runs.is_finished(runs.run_dir(tiny_cfg))


def test_ray_workers_get_the_drivers_numerics_selection(monkeypatch):
    from types import SimpleNamespace

    from dwa_core.sweep import execute

    calls = []
    fake_ray = SimpleNamespace(is_initialized=lambda: False, init=lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(numerics, "VERSION", 5)
    execute._ensure_ray(fake_ray, None, 2)
    execute._ensure_ray(fake_ray, "ray://head:10001", 2)
    assert [c["runtime_env"] for c in calls] == [{"env_vars": {"DWA_CORE_NUMERICS": "5"}}] * 2
    assert calls[1]["address"] == "ray://head:10001"
