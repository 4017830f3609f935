"""Bad input of issue 12: every one is a clear one-line error before any training, and the CLI
exits with 2 (bad input) or 1 (an OS error) without a traceback."""

import errno
import json
import math

import pytest
import torch

from dwa_core import ExperimentConfig, TrainConfig, data, models
from dwa_core.approaches.base import Approach
from dwa_core.cli import main
from dwa_core.config import ConfigError
from dwa_core.data import cache, sources
from dwa_core.experiment import validate
from dwa_core.models.init import apply_weight_init, parse_weight_init

TINY = ["--epochs", "1", "--max-tasks", "2", "--benchmark-param", "per_class=10", "--no-figure"]


@pytest.fixture
def no_training(monkeypatch):
    """Training is a test failure: the error must come before it."""
    def fit(self, *args, **kwargs):
        raise AssertionError("training started")
    monkeypatch.setattr(Approach, "fit", fit)


def cli(capsys, *argv):
    code = main(["run", *argv])
    err = capsys.readouterr().err.strip()
    return code, err


# ---- typed config fields, one place for every config dataclass -----------------------------------
@pytest.mark.parametrize("field, value, allowed", [
    ("epochs", 2.5, "an integer"), ("batch_size", 2.5, "an integer"), ("epochs", True, "an integer"),
    ("epochs", "abc", "an integer"), ("lr", math.inf, "a finite number"), ("lr", "nan", "a finite number"),
    ("lr_min", "-inf", "a finite number"), ("lr_schedule", "never", "one of"),
])
def test_train_config_rejects_by_declared_type(field, value, allowed):
    with pytest.raises(ConfigError, match=f"train.{field}: must be {allowed}"):
        TrainConfig(**{field: value})


def test_train_config_coerces_strings_by_declared_type():
    cfg = TrainConfig(epochs="3", lr="0.1", clip_grad="5")
    assert (cfg.epochs, cfg.lr, cfg.clip_grad) == (3, 0.1, 5.0)
    assert type(cfg.epochs) is int and type(cfg.lr) is float and TrainConfig(lr=1).lr == 1.0


@pytest.mark.parametrize("changes, message", [
    ({"train": 5}, "train: must be a table of TrainConfig settings"),
    ({"seed": 1.5}, "seed: must be an integer"), ({"seed": -1}, "seed: must be an integer >= 0"),
    ({"approach_params": [1]}, "approach_params: must be a table"),
    ({"device": "cuda:-1"}, "device: must be 'auto', 'cpu', 'cuda', 'cuda:N'"),
    ({"download": "maybe"}, "download: must be true or false"),
])
def test_experiment_config_rejects_by_declared_type(changes, message):
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig(**changes)
    assert ExperimentConfig(train={"epochs": "4"}).train.epochs == 4
    from pathlib import Path
    assert ExperimentConfig(output_dir=Path("/tmp/x")).output_dir == "/tmp/x"  # paths become str


@pytest.mark.parametrize("approach, key", [("ewc", "lamb"), ("imm-mode", "lamb"),
                                           ("imm-mean", "regularizer"), ("lwf", "lamb")])
def test_infinite_hyper_parameters_are_rejected(approach, key):
    for value in (math.inf, "inf", float("nan")):
        with pytest.raises(ConfigError, match=f"{key}: must be a finite number"):
            validate(ExperimentConfig(approach=approach, approach_params={key: value}))


def test_unavailable_cuda_index_is_a_config_error():
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        with pytest.raises(ConfigError, match=f"only {n} CUDA"):
            validate(ExperimentConfig(device=f"cuda:{n}"))
    else:
        with pytest.raises(ConfigError, match="CUDA is not available"):
            validate(ExperimentConfig(device="cuda:0"))


# ---- networks: parameters by type, input shape at build time --------------------------------------
def test_network_parameter_of_the_wrong_type_names_it():
    with pytest.raises(ConfigError, match=r"network_params \(mlp\).hidden: must be an integer, got 'abc'"):
        models.build("mlp", "plain", (1, 8, 8), [2, 2], {"hidden": "abc"})
    with pytest.raises(ConfigError, match="unknown width; valid: hidden, layers, dropout"):
        models.build("mlp", "plain", (1, 8, 8), [2, 2], {"width": 3})
    assert models.build("mlp", "plain", (1, 8, 8), [2], {"hidden": "7"}).last.heads[0].in_features == 7


def test_network_that_does_not_fit_the_input_is_found_when_built():
    with pytest.raises(ConfigError, match="network alexnet does not fit the benchmark's input 1x8x8"):
        models.build("alexnet", "plain", (1, 8, 8), [2, 2])
    models.build("alexnet", "plain", (3, 32, 32), [2, 2])  # fits


def test_pytorch_weight_init_is_torchs_default_bound():
    assert parse_weight_init("pytorch") == {"conv": "pytorch", "conv_bias": "pytorch",
                                            "linear": "pytorch", "linear_bias": "pytorch"}
    assert parse_weight_init("kaiming:pytorch")["linear_bias"] == "pytorch"
    assert parse_weight_init("pytorch:xavier")["linear_bias"] == "zeros"
    torch.manual_seed(0)
    layer = apply_weight_init(torch.nn.Sequential(torch.nn.Linear(400, 300)), "kaiming:pytorch")[0]
    bound = 1 / math.sqrt(400)  # nn.Linear's reset_parameters: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound
    assert layer.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)  # uniform std
    assert layer.bias.abs().max() > 0.8 * bound  # not zeros


# ---- data: task order, data dir, offline message ----------------------------------------------------
def names(**params):
    cfg = ExperimentConfig(benchmark_params={"per_class": 5, **params})
    return [t.name for t in data.load_benchmark(cfg).tasks]


def test_task_order_seeded_natural_and_explicit():
    # seed 0: numpy RandomState(0).shuffle(arange(5)) = [2, 0, 1, 3, 4]
    assert names() == ["digits-4-5", "digits-0-1", "digits-2-3", "digits-6-7", "digits-8-9"]
    assert names(task_order="natural") == [f"digits-{2 * k}-{2 * k + 1}" for k in range(5)]
    assert names(task_order=[4, 3]) == ["digits-8-9", "digits-6-7"]
    assert names(task_order="[1,0]") == ["digits-2-3", "digits-0-1"]  # as the CLI passes it
    seeded = data.load_benchmark(ExperimentConfig(benchmark_params={"per_class": 5}))
    natural = data.load_benchmark(ExperimentConfig(benchmark_params={"per_class": 5,
                                                                      "task_order": "natural"}))
    assert torch.equal(seeded.tasks[0].train.x, natural.tasks[2].train.x)  # same task, other place


@pytest.mark.parametrize("order, message", [
    ("bogus", "must be 'seeded', 'natural' or a list"), ([1, 1], "distinct"),
    ([7], r"no task \[7\]; valid: 0=digits-0-1"),
])
def test_bad_task_order(order, message):
    with pytest.raises(ConfigError, match=message):
        names(task_order=order)


def test_data_dir_that_is_a_file_is_refused_before_training(tmp_path, capsys, no_training):
    (tmp_path / "f").write_text("")
    code, err = cli(capsys, "--data-dir", str(tmp_path / "f"), "--output-dir", str(tmp_path), *TINY)
    assert code == 2 and err == f"error: data_dir: {tmp_path / 'f'} is not a directory"


def test_read_only_cache_dir_is_a_warning_not_a_crash(tmp_path, monkeypatch, caplog):
    def read_only(*args):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "x.pt"))
    monkeypatch.setattr(cache, "save", read_only)
    assert cache.cached("x", lambda: "built", tmp_path) == "built"
    assert "Read-only file system" in caplog.text


def test_offline_message_spells_download_per_interface(tmp_path, capsys):
    with pytest.raises(sources.DatasetNotFoundError) as caught:
        sources.find("mnist", tmp_path)
    assert "pass download=True" in str(caught.value) and "--set" not in str(caught.value)
    code, err = cli(capsys, "--benchmark", "mnist2", "--data-dir", str(tmp_path), "--output-dir",
                    str(tmp_path / "out"), *TINY)
    assert code == 2 and "pass --set download=true" in err and "download=True" not in err


# ---- the CLI edge ------------------------------------------------------------------------------------
def test_preset_with_train_5_is_refused_before_the_data_loads(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(data, "load_benchmark", lambda *a, **k: pytest.fail("data loaded"))
    for suffix, text in ((".toml", "train = 5\n"), (".json", json.dumps({"train": 5}))):
        preset = tmp_path / f"p{suffix}"
        preset.write_text(text)
        code, err = cli(capsys, "--preset", str(preset))
        assert code == 2 and err == "error: train: must be a table of TrainConfig settings (a dict), got 5"


@pytest.mark.parametrize("argv, message", [
    (["--network-param", "hidden=abc"], "error: network_params (mlp).hidden: must be an integer, got 'abc'"),
    (["--device", "cuda:-1"], "error: device: must be 'auto', 'cpu', 'cuda', 'cuda:N' (N >= 0) or 'mps', "
                              "got 'cuda:-1'"),
    (["--lr", "inf"], "error: train.lr: must be a finite number, got inf"),
    (["--param", "lamb=inf", "--approach", "ewc"],
     "error: approach_params (ewc).lamb: must be a finite number, got inf"),
    (["--epochs", "2.5"], "error: train.epochs: must be an integer, got '2.5'"),
    (["--network", "alexnet"], "error: network alexnet does not fit the benchmark's input 1x8x8"),
])
def test_bad_values_are_one_line_errors_with_exit_2(argv, message, tmp_path, capsys, no_training):
    code, err = cli(capsys, "--output-dir", str(tmp_path), *TINY, *argv)
    assert code == 2 and err.startswith(message) and "\n" not in err


def test_output_dir_that_is_a_file_is_found_before_training(tmp_path, capsys, no_training):
    (tmp_path / "out").write_text("")
    code, err = cli(capsys, "--output-dir", str(tmp_path / "out"), *TINY)
    assert code == 2  # bad input (issue 21: every output path is checked before any work)
    assert err == f"error: output_dir (--output-dir): {tmp_path / 'out'} is a file, not a folder"
