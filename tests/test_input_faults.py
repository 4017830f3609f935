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
    ("dwa", "use_anchor_first", "zz", "true or false"), ("random", "latest_task_labels", "zz", "true or false"),
    ("lfl", "reduction", "zz", "one of"), ("hat", "s_max", 0.5, ">= 1"), ("pathnet", "generations", 0, ">= 1"),
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
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
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
