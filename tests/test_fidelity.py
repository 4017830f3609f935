"""The catalogue of fidelity switches matches the code: fields exist, defaults are the defaults, the
original values are accepted, the original-code preset sets DWA's, and flip changes one switch."""

import dataclasses

import pytest

from dwa_core import approaches, data, fidelity
from dwa_core.config import ExperimentConfig, TrainConfig, build_params
from dwa_core.models.dwa import DWANet
from dwa_core.presets import load_preset


def _params_class(owner: str) -> type:
    return data.get_spec(owner).Params if owner in data.names() else approaches.get(owner).Params


def _defaults(owner: str) -> dict:
    if owner == "train":
        return {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    if owner == "network":
        import inspect
        return {n: p.default for n, p in inspect.signature(DWANet.__init__).parameters.items()}
    return {f.name: f.default for f in dataclasses.fields(_params_class(owner))}


@pytest.mark.parametrize("switch", fidelity.SWITCHES, ids=lambda s: s.name)
def test_each_switch_names_a_real_field_with_its_default(switch):
    defaults = _defaults(switch.owner)
    assert switch.field in defaults
    assert defaults[switch.field] == switch.default
    if switch.owner not in ("train", "network"):  # the original value is a valid setting
        values = {**dict(switch.requires), switch.field: switch.original}
        params = build_params(_params_class(switch.owner), values, "p")
        assert getattr(params, switch.field) == switch.original


def test_original_code_preset_sets_every_dwa_switch():
    preset = load_preset("original-code")
    for switch in fidelity.of("dwa"):
        sections = {"train": preset["train"], "network": preset["network_params"]}
        section = sections.get(switch.owner, preset["approach_params"])
        assert section.get(switch.field) == switch.original, switch.name


def test_flip_changes_exactly_one_switch_and_refuses_other_approaches():
    cfg = ExperimentConfig(approach="dwa", approach_params={"alpha": 2.0})
    flipped = fidelity.flip(cfg, fidelity.get("dwa", "fisher_accumulate"))
    # with what the original value needs: the accumulated Fisher is the batch form's
    assert flipped.approach_params == {"alpha": 2.0, "fisher_form": "batch", "fisher_accumulate": True}
    assert fidelity.flip(cfg, fidelity.get("train", "lr_schedule")).train.lr_schedule == "original-code"
    assert fidelity.flip(cfg, fidelity.get("network", "gate")).network_params == {"gate": "sigmoid"}
    assert cfg.approach_params == {"alpha": 2.0}  # unchanged
    with pytest.raises(ValueError, match="lfl"):
        fidelity.flip(cfg, fidelity.get("lfl", "reduction"))
    with pytest.raises(KeyError, match="known"):
        fidelity.get("dwa", "no_such_switch")
    assert {s.owner for s in fidelity.of("sgd")} == {"train"}
    assert len(fidelity.table()) == len(fidelity.SWITCHES)
