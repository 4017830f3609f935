"""The audit of defaults against the papers (fidelity.AUDIT) matches the code, and no fidelity
switch has the original code's value as its default (the fault of issue 12)."""

import dataclasses
import inspect

import pytest

from dwa_core import ExperimentConfig, TrainConfig, approaches, data, fidelity, models
from dwa_core.models.dwa import DWANet


def _default(where: str, field: str):
    if where == "config":
        return {f.name: f.default for f in dataclasses.fields(ExperimentConfig)}.get(field, "seeded")
    if where == "train":
        return {f.name: f.default for f in dataclasses.fields(TrainConfig)}[field]
    if where.startswith("network:"):
        cls = models.NETWORKS.get(where.split(":", 1)[1])
        parameters = inspect.signature(cls.__init__).parameters
        if field not in parameters:  # forwarded through **kwargs to DWANet
            parameters = inspect.signature(DWANet.__init__).parameters
        return parameters[field].default
    owner = data.get_spec(where).Params if where in data.names() else approaches.get(where).Params
    return {f.name: f.default for f in dataclasses.fields(owner)}[field]


@pytest.mark.parametrize("item", fidelity.AUDIT, ids=lambda a: f"{a.where}.{a.field}")
def test_audited_default_is_the_code_default(item):
    assert _default(item.where, item.field) == item.value


@pytest.mark.parametrize("switch", fidelity.SWITCHES, ids=lambda s: s.name)
def test_no_switch_defaults_to_the_original_code(switch):
    # issue 12: imm-mean's merge_heads had default == original == True
    assert switch.default != switch.original


def test_the_issue_12_defaults_are_the_papers():
    assert approaches.get("imm-mean").Params().merge_heads is False
    assert approaches.get("ewc").Params().fisher_form == "per-sample"
    assert approaches.get("imm-mode").Params().fisher_form == "per-sample"
    assert data.get_spec("mnist2").Params().valid_is_train_copy is False


def test_flip_sets_a_benchmark_switch():
    cfg = ExperimentConfig(benchmark="pmnist")
    flipped = fidelity.flip(cfg, fidelity.get("pmnist", "valid_is_train_copy"))
    assert flipped.benchmark_params == {"valid_is_train_copy": True}
    assert len(fidelity.audit_table()) == len(fidelity.AUDIT)
