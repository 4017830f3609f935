"""Sweeps: building, local/Ray runs with resume and failure isolation, aggregation by hand."""

import argparse
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from dwa_core import cli, sweep
from dwa_core.approaches import register
from dwa_core.approaches.sgd import SGD
from dwa_core.config import ConfigError, ExperimentConfig
from dwa_core.experiment import run_experiment
from dwa_core.observers import NO_OBSERVER
from dwa_core.results import Results

BASE = ExperimentConfig(benchmark="split-digits", max_tasks=3, benchmark_params={"per_class": 20},
                        train={"epochs": 1}, device="cpu")
T_975_1 = 12.706204736174698  # Student t quantile 0.975 with 1 degree of freedom (tables)


def tiny_configs():
    return sweep.grid(BASE, {"approach": ["sgd", "ewc"]}, seeds=[0, 1])


# ---- building -----------------------------------------------------------------------------------
def test_grid_dotted_fields_and_seeds():
    cfgs = sweep.grid(BASE.replace(approach="ewc"), {"train.lr": [0.1, 0.01], "approach_params.lamb": [5.0]},
                      seeds=[0, 3])
    assert [(c.train.lr, c.approach_params["lamb"], c.seed) for c in cfgs] == [
        (0.1, 5.0, 0), (0.1, 5.0, 3), (0.01, 5.0, 0), (0.01, 5.0, 3)]
    assert cfgs[0].train.epochs == 1 and cfgs[0].benchmark_params == {"per_class": 20}
    assert len({c.key() for c in cfgs}) == 4


def test_with_references_adds_random_and_joint_once_per_seed():
    cfgs = sweep.with_references(sweep.grid(BASE.replace(approach="ewc"),
                                            {"approach_params.lamb": [1.0, 2.0]}, seeds=[0, 1]))
    refs = sorted((c.approach, c.seed) for c in cfgs if c.approach in ("random", "joint"))
    assert refs == [("joint", 0), ("joint", 1), ("random", 0), ("random", 1)]
    assert all(c.approach_params == {} for c in cfgs if c.approach in ("random", "joint"))
    assert len(cfgs) == 8


def test_references_keep_only_what_a_plain_network_accepts():
    dwa = BASE.replace(approach="dwa", network_params={"hidden": 64, "mask_start": 0.2})
    refs = [c for c in sweep.with_references([dwa]) if c.approach in ("random", "joint")]
    assert len(refs) == 2 and all(c.network_params == {"hidden": 64} for c in refs)


def test_references_from_a_base_take_its_training_not_the_runs():
    warm = BASE.replace(approach="dwa", seed=3, train={"warmup_epochs": 1, "warmup_divisor": 750.0})
    refs = [c for c in sweep.with_references([warm], BASE) if c.approach in ("random", "joint")]
    assert sorted(c.approach for c in refs) == ["joint", "random"]
    assert all(c.seed == 3 and c.train == BASE.train and c.train.warmup_epochs == 0 for c in refs)


def test_sample_space_is_seeded_and_in_bounds():
    space = {"train.lr": {"loguniform": [1e-3, 1e-1]}, "approach": {"choice": ["sgd", "ewc"]}}
    a = sweep.sample_space(BASE, space, 5, seed=1)
    b = sweep.sample_space(BASE, space, 5, seed=1)
    assert [c.key() for c in a] == [c.key() for c in b]
    assert all(1e-3 <= c.train.lr <= 1e-1 and c.approach in ("sgd", "ewc") for c in a)
    with pytest.raises(ConfigError):
        sweep.sample_space(BASE, {"train.lr": {"normal": [0, 1]}}, 1)


def test_shipped_definitions_load():
    smoke = sweep.load_definition("smoke-digits")
    assert sorted({c.approach for c in smoke.configs}) == ["ewc", "joint", "random", "sgd"]
    assert len(smoke.configs) == 8 and {c.seed for c in smoke.configs} == {0, 1}
    related = sweep.load_definition("related-work-digits")
    assert {c.seed for c in related.configs} == {0, 1, 2}
    assert {"sgd", "ewc", "joint", "random"} <= {c.approach for c in related.configs}
    hat = sweep.load_definition("hat-grid")
    assert len(hat.configs) == 8 * 6 + 2  # the grid plus random and joint
    final = sweep.load_definition("dwa-final")  # variants differing in train share one reference pair
    assert len(final.configs) == 3 * 3 + 2 * 3


@pytest.mark.parametrize("name", ["smoke-digits", "related-work-digits", "ewc-lambda", "ewc-search",
                                  "hat-grid",
                                  "dwa-gridsearch1", "dwa-gridsearch2", "dwa-gridsearch3", "dwa-final"])
def test_every_shipped_definition_validates(name):
    from dwa_core.experiment import validate

    for cfg in sweep.load_definition(name).configs:
        validate(cfg)


def test_cli_dry_run_lists_runs(capsys):
    parser = argparse.ArgumentParser()
    cli.add_sweep_command(parser.add_subparsers())
    args = parser.parse_args(["sweep", "smoke-digits", "--dry-run"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "8 runs" in out and "split-digits_sgd_0_" in out


SMOKE_DEFINITION = """
[sweep]
name = "typo"
seeds = [0, 1, 2]
[base]
benchmark = "split-digits"
[grid]
approach = ["sgd"]
"""


@pytest.mark.parametrize("typo, unknown, valid", [
    (("[grid]", "[grdi]"), "'grdi'", "sweep, base, grid, variants, search"),
    (("[grid]\napproach", "[[variant]]\napproach"), "'variant'", "sweep, base, grid, variants, search"),
    (("seeds =", "seed ="), "'seed'", "name, seeds, references, output_dir, backend, workers")])
def test_definition_with_a_misspelt_table_or_key_is_an_error(tmp_path, typo, unknown, valid):
    # Issue 12: a misspelt table or [sweep] key was silently ignored (3 runs instead of 9).
    good = tmp_path / "good.toml"
    good.write_text(SMOKE_DEFINITION)
    assert len([c for c in sweep.load_definition(good).configs if c.approach == "sgd"]) == 3
    bad = tmp_path / "bad.toml"
    bad.write_text(SMOKE_DEFINITION.replace(*typo))
    with pytest.raises(ConfigError) as err:
        sweep.load_definition(bad)
    assert str(bad) in str(err.value) and unknown in str(err.value) and f"valid: {valid}" in str(err.value)


def test_syntax_errors_name_the_file(tmp_path, capsys):
    from dwa_core.presets import load_preset

    definition, preset = tmp_path / "broken.toml", tmp_path / "broken.json"
    definition.write_text("[sweep]\nname = \n")
    preset.write_text('{"approach": "sgd",}')
    with pytest.raises(ConfigError, match=r"broken\.toml: invalid TOML: .*line 2"):
        sweep.load_definition(definition)
    with pytest.raises(ConfigError, match=r"broken\.json: invalid JSON: .*line 1 column 20"):
        load_preset(str(preset))
    assert cli.main(["run", "--preset", str(preset)]) == 2
    assert f"{preset}: invalid JSON" in capsys.readouterr().err


def test_a_corrupt_results_file_is_reported_and_the_rest_aggregated(tmp_path, capsys):
    # Issue 12: one truncated results.json aborted the aggregation of every run (--aggregate-only too).
    definition = tmp_path / "two.toml"
    definition.write_text(SMOKE_DEFINITION.replace("[0, 1, 2]", "[0, 1]").replace(
        "[base]", '[base]\nmax_tasks = 2\nbenchmark_params = { per_class = 5 }\ntrain = { epochs = 1 }'))
    out = tmp_path / "out"
    d = sweep.load_definition(definition)
    for cfg in d.configs:
        acc = {"random": [[0.5, 0.0], [0.5, 0.5]], "joint": [[1.0, 0.0], [1.0, 1.0]]}.get(
            cfg.approach, [[0.9, 0.0], [0.7, 0.9]])
        results = hand_results(cfg.approach, cfg.seed, acc)
        results.config = cfg.to_dict()
        results.save(sweep.run_dir(cfg, out) / "results.json")
    corrupt = sweep.run_dir(d.configs[1], out) / "results.json"
    corrupt.write_text(corrupt.read_text()[:40])
    problems = []
    frame = sweep.results_frame(sweep.load_results(out, d.configs, problems))
    assert len(frame) == len(d.configs) - 1 and [p for p, _ in problems] == [corrupt]
    code = cli.main(["sweep", str(definition), "--output-dir", str(out), "--aggregate-only"])
    captured = capsys.readouterr()
    assert code == 1 and f"skipped (unreadable results): {corrupt}" in captured.err
    rows = (out / "runs.csv").read_text().splitlines()
    assert (out / "summary.csv").exists() and len(rows) == 1 + len(d.configs) - 1  # header + readable runs


# ---- running ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """A subset first (in-process), one run interrupted after task 0, then the full sweep on a
    2-process pool with an extra config that fails (unknown benchmark)."""
    out = tmp_path_factory.mktemp("sweep")
    cfgs = tiny_configs()
    first = sweep.run_sweep(cfgs[:1], out, workers=1, progress=False)
    interrupted = cfgs[1].replace(output_dir=str(out))

    def stop(t, results):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(interrupted, on_task=stop)
    bad = BASE.replace(benchmark="no-such-benchmark")
    second = sweep.run_sweep(cfgs + [bad], out, workers=2, progress=False)
    return out, cfgs, first, second


def test_rerun_skips_finished_and_resumes_interrupted(local_sweep):
    out, cfgs, first, second = local_sweep
    assert [o["status"] for o in first] == ["trained"]
    assert [o["status"] for o in second] == ["cached", "resumed", "trained", "trained", "failed"]
    for c in cfgs:
        r = Results.load(sweep.run_dir(c, out) / "results.json")
        assert r.finished and r.n_tasks == 3 and r.config["seed"] == c.seed
    third = sweep.run_sweep(cfgs, out, workers=1, progress=False)
    assert [o["status"] for o in third] == ["cached"] * 4


SIGTERM_SWEEP = """
import sys
from dwa_core import sweep
from dwa_core.config import ExperimentConfig
base = ExperimentConfig(benchmark="split-digits", max_tasks=3, benchmark_params={"per_class": 20},
                        train={"epochs": 400, "lr_patience": 1000}, device="cpu")
sweep.run_sweep([base.replace(seed=s) for s in (0, 1)], sys.argv[1], workers=2, progress=False)
"""


def test_sigterm_to_a_sweep_stops_its_workers(tmp_path):
    """`kill PID` of a background sweep stops its pool's workers too: none trains on as an orphan
    holding its run's lock (each lock can be taken right after the parent exits)."""
    import fcntl
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "runs"
    env = dict(os.environ, PYTHONPATH=str(Path(sweep.__file__).resolve().parents[2]))
    parent = subprocess.Popen([sys.executable, "-c", SIGTERM_SWEEP, str(out)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(out.glob("*/checkpoint.pt"))) < 2:  # both workers are training
        assert parent.poll() is None and time.monotonic() < deadline, parent.communicate()
        time.sleep(0.2)
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) != 0
    for lock in out.glob("*/.lock"):
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: an orphan holds it
    assert len(list(out.glob("*/.lock"))) == 2


def test_failed_run_in_pool_is_recorded(local_sweep):
    out, _, _, second = local_sweep
    failed = second[-1]
    bad_dir = sweep.run_dir(BASE.replace(benchmark="no-such-benchmark"), out)
    error = json.loads((bad_dir / "error.json").read_text())
    assert "no-such-benchmark" in failed["error"] and error["error"] == failed["error"]
    assert "Traceback" in error["traceback"] and error["config"]["benchmark"] == "no-such-benchmark"


@register("test-boom")
class Boom(SGD):
    """Trains task 0, raises inside training on task 1."""

    def fit(self, t, task, earlier=(), observer=NO_OBSERVER):
        if t == 1:
            raise RuntimeError("boom on task 1")
        return super().fit(t, task, earlier, observer)


def test_failure_inside_training_is_isolated(tmp_path):
    boom, ok = BASE.replace(approach="test-boom"), BASE.replace(approach="sgd", max_tasks=2)
    outcomes = sweep.run_sweep([boom, ok], tmp_path, workers=1, progress=False)
    assert [o["status"] for o in outcomes] == ["failed", "trained"]
    error = json.loads((sweep.run_dir(boom, tmp_path) / "error.json").read_text())
    assert error["error"] == "RuntimeError: boom on task 1"
    assert Results.load(sweep.run_dir(boom, tmp_path) / "results.json").completed_tasks == 1
    assert Results.load(sweep.run_dir(ok, tmp_path) / "results.json").finished
    assert not (sweep.run_dir(ok, tmp_path) / "error.json").exists()
    frame = sweep.results_frame(sweep.load_results(tmp_path))
    assert list(frame["approach"]) == ["sgd"]  # the unfinished run is left out of aggregation


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_backend_matches_local(local_sweep, tmp_path):
    import ray

    out, cfgs, _, _ = local_sweep
    try:
        outcomes = sweep.run_sweep(cfgs, tmp_path, backend="ray", workers=2, progress=False)
    finally:
        ray.shutdown()
    assert [o["status"] for o in outcomes] == ["trained"] * 4
    for c in cfgs:
        local = Results.load(sweep.run_dir(c, out) / "results.json").acc_matrix()
        remote = Results.load(sweep.run_dir(c, tmp_path) / "results.json").acc_matrix()
        np.testing.assert_array_equal(local, remote)


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_tune_search_maximises_validation_and_only_reports_test(tmp_path):
    import ray

    base = BASE.replace(approach="ewc", max_tasks=2)
    space = {"train.lr": {"choice": [0.01, 0.2]}}
    try:
        grid = sweep.tune_search(base, space, tmp_path, num_samples=2, workers=1)
    finally:
        ray.shutdown()
    trials = list(grid)
    assert len(trials) == 2 and not any(t.error for t in trials)
    for trial in trials:
        cfg = sweep.with_fields(base, **trial.config)
        results = Results.load(sweep.run_dir(cfg, tmp_path) / "results.json")
        assert results.n_tasks == 2
        # the selection metric is the validation average of the last row; test is only beside it
        valid, test = np.mean(results.valid_acc[-1]), np.mean(results.acc[-1])
        assert trial.metrics["valid_avg_acc"] == pytest.approx(valid)
        assert trial.metrics["avg_acc"] == pytest.approx(test)
    best = grid.get_best_result()
    assert best.metrics["valid_avg_acc"] == max(t.metrics["valid_avg_acc"] for t in trials)


def test_ray_missing_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)
    with pytest.raises(ConfigError, match="pip install"):
        sweep.run_sweep([BASE], tmp_path, backend="ray", progress=False)


# ---- aggregation by hand ------------------------------------------------------------------------
def hand_results(approach, seed, acc):
    cfg = ExperimentConfig(approach=approach, seed=seed, max_tasks=2).to_dict()
    return Results(cfg, ["a", "b"], [2, 2], acc, [[0.0, 0.0], [0.0, 0.0]], completed_tasks=2)


@pytest.fixture
def hand_frame():
    results = []
    for seed in (0, 1):
        results.append(hand_results("random", seed, [[0.5, 0.0], [0.5, 0.5]]))
        results.append(hand_results("joint", seed, [[1.0, 0.0], [1.0, 1.0]]))
    results.append(hand_results("sgd", 0, [[0.9, 0.0], [0.7, 0.9]]))
    results.append(hand_results("sgd", 1, [[0.9, 0.0], [0.9, 0.9]]))
    return sweep.results_frame(results)


def test_results_frame_metrics_by_hand(hand_frame):
    sgd = hand_frame[hand_frame.approach == "sgd"].set_index("seed")
    # seed 0: avg (0.7 + 0.9) / 2; BWT 0.7 - 0.9; rho mean((0.7-.5)/.5 - 1, (0.9-.5)/.5 - 1)
    assert sgd.loc[0, "avg_acc"] == pytest.approx(0.8)
    assert sgd.loc[0, "bwt"] == pytest.approx(-0.2)
    assert sgd.loc[0, "forgetting"] == pytest.approx(0.2)
    assert sgd.loc[0, "rho"] == pytest.approx(-0.4)
    assert sgd.loc[0, "retention"] == pytest.approx(0.4)  # (0.7 - 0.5) / (1 - 0.5)
    assert sgd.loc[0, "percent_forgotten"] == pytest.approx(60.0)
    assert sgd.loc[1, "rho"] == pytest.approx(-0.2) and sgd.loc[1, "avg_acc"] == pytest.approx(0.9)
    joint = hand_frame[hand_frame.approach == "joint"]
    assert (joint["rho"] == 0).all()


def test_summary_mean_and_student_t_interval_by_hand(hand_frame):
    summary = sweep.summarize(hand_frame).set_index("label")
    # avg_acc over seeds {0.8, 0.9}: mean 0.85, sample std 0.05 * sqrt(2), n 2
    assert summary.loc["sgd", "n"] == 2
    assert summary.loc["sgd", "avg_acc"] == pytest.approx(0.85)
    assert summary.loc["sgd", "avg_acc_ci"] == pytest.approx(T_975_1 * 0.05 * math.sqrt(2) / math.sqrt(2))
    # rho over {-0.4, -0.2}: mean -0.3, sample std 0.1 * sqrt(2)
    assert summary.loc["sgd", "rho"] == pytest.approx(-0.3)
    assert summary.loc["sgd", "rho_ci"] == pytest.approx(T_975_1 * 0.1 * math.sqrt(2) / math.sqrt(2))
    assert summary.loc["random", "rho"] == pytest.approx(-1.0)
    assert summary.loc["random", "rho_ci"] == pytest.approx(0.0)


def test_grids_show_the_validation_score_that_chooses_a_point():
    run = hand_results("sgd", 0, [[0.9, 0.0], [0.7, 0.9]])
    run.valid_acc = [[0.8, 0.0], [0.6, 0.7]]
    other = hand_results("sgd", 1, [[0.9, 0.0], [0.9, 0.9]])
    other.valid_acc = [[0.8, 0.0], [0.4, 0.7]]
    frame = sweep.results_frame([run, other]).set_index("seed")
    assert frame.loc[0, "valid_avg_acc"] == pytest.approx(0.65)  # (0.6 + 0.7) / 2, not the test 0.8
    assert frame.loc[0, "avg_acc"] == pytest.approx(0.8)
    assert sweep.summarize(frame.reset_index()).loc[0, "valid_avg_acc"] == pytest.approx(0.6)
    older = hand_results("sgd", 0, [[0.9, 0.0], [0.7, 0.9]])  # recorded before validation accuracy was
    assert np.isnan(sweep.results_frame([older]).loc[0, "valid_avg_acc"])


def test_per_task_frame_by_hand():
    results = [hand_results("random", 0, [[0.5, 0.0], [0.5, 0.5]]),
               hand_results("joint", 0, [[1.0, 0.0], [1.0, 1.0]]),
               hand_results("sgd", 0, [[0.9, 0.0], [0.7, 0.9]])]
    frame = sweep.results_frame(results, per_task=True)
    sgd = frame[frame.approach == "sgd"].set_index("task")
    assert sgd.loc[0, "avg_acc"] == pytest.approx(0.9) and sgd.loc[1, "avg_acc"] == pytest.approx(0.8)
    assert sgd.loc[0, "rho"] == pytest.approx(-0.2) and sgd.loc[1, "rho"] == pytest.approx(-0.4)
    assert np.isnan(sgd.loc[0, "retention"]) and sgd.loc[1, "retention"] == pytest.approx(0.4)


def test_rho_is_nan_without_references():
    frame = sweep.results_frame([hand_results("sgd", 0, [[0.9, 0.0], [0.7, 0.9]])])
    assert np.isnan(frame.loc[0, "rho"]) and frame.loc[0, "avg_acc"] == pytest.approx(0.8)


def test_related_work_table_and_markdown(hand_frame):
    table = sweep.related_work_table(hand_frame)
    row = table.set_index("approach").loc["sgd"]
    assert row["seeds"] == 2
    assert row["final avg accuracy"] == f"0.850 ± {T_975_1 * 0.05:.3f}"  # sample std 0.05 * sqrt(2)
    assert row["HAT forgetting ratio rho"] == f"-0.300 ± {T_975_1 * 0.1:.3f}"
    text = sweep.to_markdown(table).splitlines()
    assert text[0] == "| benchmark | approach | seeds | final avg accuracy | HAT forgetting ratio rho |"
    assert text[1] == "|---|---|---|---|---|" and len(text) == 2 + 3
