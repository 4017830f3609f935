"""Fields that describe themselves (dwa_core/fields.py): every field is documented, one rule validates
every config dataclass, and the files generated from the declarations (the `original-code` preset,
the README's switch list) are the committed ones."""

import dataclasses
import math
import typing
from pathlib import Path

import pytest

from dwa_core import approaches, data, fidelity, fields
from dwa_core.config import ConfigError, ExperimentConfig, NoParams, TrainConfig, WeightScheme
from dwa_core.models.init import SCHEMES
from dwa_core.presets import load_preset

ROOT = Path(__file__).resolve().parent.parent


def _config_classes():
    yield "train", TrainConfig
    yield "config", ExperimentConfig
    for name in approaches.names():
        if approaches.get(name).Params is not NoParams:
            yield name, approaches.get(name).Params
    for name in data.names():
        yield name, data.get_spec(name).Params


@pytest.mark.parametrize("owner, cls", list(_config_classes()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_field_is_documented(owner, cls):
    docs = fields.docs(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    assert list(docs) == names  # every field, in declaration order
    assert all(len(text) > 10 for text in docs.values()), docs


def test_docs_are_the_declared_texts():
    docs = fields.docs(approaches.get("hat").Params)
    assert "s_max" in docs["s_max"] and "Eq. 3" in docs["s_max"]
    assert "cross-entropy" in fields.docs(TrainConfig)["valid_loss"]


@pytest.mark.parametrize("build, message", [
    (lambda: approaches.get("hat").Params(s_max="x"), r"approach_params\.s_max: must be a number, got 'x'"),
    (lambda: approaches.get("hat").Params(c=math.inf), r"approach_params\.c: must be a finite number"),
    (lambda: approaches.get("random").Params(latest_task_labels="zz"),
     r"approach_params\.latest_task_labels: must be true or false"),
    (lambda: TrainConfig(lr_factor=1.0), r"train\.lr_factor: must be a number > 1, got 1\.0"),
    (lambda: TrainConfig(clip_grad=0), r"train\.clip_grad: must be a number > 0"),
    (lambda: approaches.get("dwa").Params(negative_candidates=0),
     r"approach_params\.negative_candidates: must be an integer >= 1"),
    (lambda: approaches.get("ewc").Params(accumulate_gradients=True),
     r"approach_params\.accumulate_gradients: must be False unless fisher_form='batch'"),
    (lambda: data.get_spec("mnist2").Params(n_tasks=11),
     r"benchmark_params\.n_tasks: must be an integer in \[1, 10\]"),
    (lambda: data.get_spec("split-digits").Params(shape="2x2"),
     r"benchmark_params\.shape: must be one of 'native'"),
    (lambda: ExperimentConfig(weight_init="he:xavier"), r"weight_init: unknown scheme 'he'"),
    (lambda: ExperimentConfig(name="../x"), r"name: must be one folder-name component"),
])
def test_one_rule_validates_every_config_dataclass(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


def test_a_non_default_value_is_accepted_with_what_it_requires():
    params = approaches.get("ewc").Params(accumulate_gradients="true", fisher_form="batch")
    assert params.accumulate_gradients is True
    assert approaches.get("dwa").Params(stiff=None).stiff is None  # bounds leave None alone


def test_a_switch_must_say_what_the_original_does():
    with pytest.raises(TypeError, match="what"):
        fields.param(False, doc="a switch without its what", original=True)


def test_switches_come_from_the_declarations():
    switch = fidelity.get("dwa", "fisher_form")
    assert (switch.default, switch.original) == ("per-sample", "batch")
    assert fidelity.get("network", "gate").original == "sigmoid"
    assert fidelity.get("dwa", "fisher_accumulate").requires == (("fisher_form", "batch"),)
    assert "hat" not in {s.owner for s in fidelity.SWITCHES}  # HAT declares no original-code value
    assert {(a.where, a.field) for a in fidelity.AUDIT} >= {("hat", "s_max"), ("network:mlp", "hidden")}


def test_the_committed_original_code_preset_is_the_generated_one():
    assert (ROOT / "dwa_core" / "presets" / "original-code.json").read_text() == fidelity.preset_text(), \
        'regenerate: python -c "from dwa_core import fidelity; fidelity.write_generated()"'
    preset = load_preset("original-code")  # a few values read from the original code by hand
    assert preset["train"]["batch_size"] == 32 and preset["train"]["lr_schedule"] == "original-code"
    assert preset["approach_params"]["lamb_triplet"] == 10 and preset["approach_params"]["alpha"] == 1.0
    assert preset["approach_params"]["fisher_form"] == "batch"
    assert preset["network_params"] == {"gate": "sigmoid"}


def test_the_readme_switch_list_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    assert fidelity.readme_with_switches(readme) == readme, \
        'regenerate: python -c "from dwa_core import fidelity; fidelity.write_generated()"'
    assert "| `dwa.fisher_form` | `\"per-sample\"` | `\"batch\"` |" in readme
    with pytest.raises(ValueError, match="no <!-- fidelity-switches start -->"):
        fidelity.readme_with_switches("no markers")


def test_weight_schemes_are_named_once():
    assert tuple(SCHEMES) == typing.get_args(WeightScheme)
