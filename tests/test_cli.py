"""`python -m dwa_core`: run with any field settable, presets from files, list, one-line errors."""

import json
import subprocess
import sys

import pytest

from dwa_core.cli import build_parser, config_from_args, main


def args_of(*argv):
    return build_parser().parse_args(["run", *argv])


def test_every_field_is_settable():
    cfg = config_from_args(args_of("--approach", "joint", "--epochs", "7", "--lr", "0.2",
                                   "--set", "train.lr_patience=3", "--set", "max_tasks=2",
                                   "--benchmark-param", "per_class=5", "--param", "latest_task_labels=true",
                                   "--network-param", "hidden=16"))
    assert (cfg.approach, cfg.train.epochs, cfg.train.lr, cfg.train.lr_patience) == ("joint", 7, 0.2, 3)
    assert cfg.max_tasks == 2 and cfg.benchmark_params == {"per_class": 5}
    assert cfg.network_params == {"hidden": 16} and cfg.approach_params == {"latest_task_labels": True}


def test_preset_file_then_flags_override(tmp_path):
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"approach": "sgd-frozen", "train": {"epochs": 4, "lr": 0.3}}))
    cfg = config_from_args(args_of("--preset", str(preset), "--epochs", "2"))
    assert cfg.approach == "sgd-frozen" and cfg.train.epochs == 2 and cfg.train.lr == 0.3
    toml = tmp_path / "p.toml"
    toml.write_text('approach = "joint"\n[train]\nbatch_size = 16\n')
    assert config_from_args(args_of("--preset", str(toml))).train.batch_size == 16


def test_run_prints_the_matrix_and_saves_results_and_figure(tmp_path, capsys):
    code = main(["run", "--output-dir", str(tmp_path), "--epochs", "2", "--max-tasks", "2",
                 "--benchmark-param", "per_class=20"])
    out = capsys.readouterr().out
    assert code == 0 and "accuracy acc[t, u]" in out and "average accuracy" in out
    run_dir = next(tmp_path.iterdir())
    assert (run_dir / "results.json").exists() and (run_dir / "accuracy.png").stat().st_size > 1000


@pytest.mark.parametrize("argv, message", [
    (["run", "--approach", "nope"], "unknown approach 'nope'"),
    (["run", "--epochs", "zero"], "train.epochs: must be an integer"),
    (["run", "--set", "train.lr"], "expected KEY=VALUE"),
    (["run", "--preset", "missing.toml"], "does not exist"),
])
def test_errors_are_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "Traceback" not in err


def test_list_names_components():
    out = subprocess.run([sys.executable, "-m", "dwa_core", "list"], capture_output=True, text=True,
                         check=True).stdout
    for name in ("split-digits", "permuted-digits", "sgd", "joint", "random", "mlp", "alexnet"):
        assert name in out


def test_figures_threads_must_be_positive_and_is_checked_before_training(tmp_path, capsys):
    from dwa_core.cli import main

    assert main(["figures", "--threads", "0", "--out", str(tmp_path / "figs")]) == 2
    assert "--threads: must be an integer >= 1, got 0" in capsys.readouterr().err
    assert not any((tmp_path / "figs").glob("*.png"))  # nothing trained, nothing drawn


def test_the_command_line_draws_on_a_file_backend_and_leaves_a_callers_alone():
    import subprocess
    import sys

    def backend_after(setup: str, call: str) -> str:
        code = (f"import os; os.environ.pop('MPLBACKEND', None); {setup}; from dwa_core import cli; "
                f"cli.{call}(['list']); import matplotlib; import matplotlib.pyplot; "
                "print(os.environ.get('MPLBACKEND'), matplotlib.get_backend())")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]

    # the program (python -m dwa_core, dwa-core) draws on a file backend unless the user chose one
    assert backend_after("pass", "entry").lower() == "agg agg"
    assert backend_after("os.environ['MPLBACKEND'] = 'svg'", "entry") == "svg svg"
    # main called from Python (a notebook, a test) changes neither the backend nor the environment,
    # which the notebooks' kernels would inherit
    assert backend_after("import matplotlib; matplotlib.use('svg')", "main") == "None svg"
    assert backend_after("pass", "main").startswith("None ")
