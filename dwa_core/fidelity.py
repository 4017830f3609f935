"""The fidelity switches: each place where the original research code does something other than the
papers say (or than works), with the value that gives either behaviour
(docs/original-code.md#training-loop, #dwa, #bugs-fixed-without-a-switch).

Nothing here is written by hand: a switch is a field declared with an `original=` value
(dwa_core/fields.py), and the audit lists every field declared with a `source=`. `SWITCHES` is the
catalogue (the README's generated switch list and notebook 10 show it); `flip(cfg, switch)`
returns a config with one switch set to the original code's value, so its effect can be measured
alone; `original_code_preset()` is the `original-code` preset (all of DWA's switches and the
original code's DWA values), committed as presets/original-code.json and checked by a test.

    from dwa_core import fidelity
    cfg = fidelity.flip(cfg, fidelity.get("dwa", "triplet_form"))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from dwa_core import approaches, data, models
from dwa_core.config import ExperimentConfig, NoParams, TrainConfig
from dwa_core.fields import UNSET, Spec, spec_of, specs


@dataclass(frozen=True)
class Switch:
    owner: str  # "train", "network" (network_params), an approach (approach_params) or a benchmark
    field: str
    default: object  # the library's default: the paper's reading (or the fix of a bug)
    original: object  # what the original code does
    what: str  # what the original does, in one line
    requires: tuple = ()  # (field, value) pairs of the same owner that the original value needs

    @property
    def name(self) -> str:
        return f"{self.owner}.{self.field}"


def _defaults(cls: type) -> dict:
    return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(cls)}


def declared() -> Iterator[tuple[str, str, object, Spec]]:
    """(owner, field, default, Spec) of every declared field: the training protocol ("train"), the
    run ("config"), each approach's and benchmark's Params (owner: its name) and each network's
    documented constructor options (owner "network:<name>")."""
    owners = [("train", TrainConfig), ("config", ExperimentConfig)]
    owners += [(n, approaches.get(n).Params) for n in approaches.names()]
    owners += [(n, data.get_spec(n).Params) for n in data.names()]
    for owner, cls in owners:
        if cls is NoParams:
            continue
        defaults = _defaults(cls)
        for name, spec in specs(cls).items():
            if spec is not None:
                yield owner, name, defaults[name], spec
    for net in models.NETWORKS.names():
        for name, (annotation, default) in models.constructor_parameters(models.NETWORKS.get(net)).items():
            spec = spec_of(annotation)
            if spec is not None:
                yield f"network:{net}", name, default, spec


def _switches() -> tuple[Switch, ...]:
    """A Switch per field with an original-code value; the networks' are one "network" owner (the
    options reach network_params whichever variant is built)."""
    found: dict[tuple[str, str], Switch] = {}
    for owner, name, default, spec in declared():
        if spec.is_switch:
            owner = "network" if owner.startswith("network:") else owner
            found.setdefault((owner, name), Switch(owner, name, default, spec.original, spec.what,
                                                   spec.requires))
    return tuple(found.values())


SWITCHES = _switches()


def get(owner: str, field: str) -> Switch:
    for switch in SWITCHES:
        if (switch.owner, switch.field) == (owner, field):
            return switch
    known = ", ".join(s.name for s in SWITCHES)
    raise KeyError(f"no fidelity switch {owner}.{field}; known: {known}")


def of(approach: str) -> list[Switch]:
    """The switches that act on a run of `approach` (its own, the training protocol's, and the
    DWA network's for dwa)."""
    owners = {"train", approach} | ({"network"} if approach == "dwa" else set())
    return [s for s in SWITCHES if s.owner in owners]


def flip(cfg: ExperimentConfig, switch: Switch, value=None) -> ExperimentConfig:
    """`cfg` with `switch` set to `value` (default: the original code's value, together with the
    settings it `requires`, e.g. DWA's fisher_accumulate needs the batch-form Fisher)."""
    value = switch.original if value is None else value
    if switch.requires and value == switch.original and switch.owner == cfg.approach:
        cfg = cfg.replace(approach_params={**cfg.approach_params, **dict(switch.requires)})
    if switch.owner == "train":
        return cfg.replace(train={switch.field: value})
    if switch.owner == "network":
        return cfg.replace(network_params={**cfg.network_params, switch.field: value})
    if switch.owner == cfg.benchmark:
        return cfg.replace(benchmark_params={**cfg.benchmark_params, switch.field: value})
    if switch.owner != cfg.approach:
        raise ValueError(f"{switch.name} is a switch of {switch.owner!r}, not of {cfg.approach!r}")
    return cfg.replace(approach_params={**cfg.approach_params, switch.field: value})


@dataclass(frozen=True)
class Audited:
    """One default checked against the papers and the original code: `where` is "train", "network:<name>"
    (a constructor keyword of that network), "config" (ExperimentConfig), an approach or a
    benchmark; `value` the library's default; `source` where it comes from."""

    where: str
    field: str
    value: object
    source: str  # where the value comes from
    note: str = ""


def _audit() -> tuple[Audited, ...]:
    """Every declared field with a `source` (the audit of issue 12: each default compared with the
    papers and the original code; the ones that were the original code's and not the papers'
    became switches)."""
    return tuple(Audited(owner, name, default, spec.source) for owner, name, default, spec in declared()
                 if spec.source)


AUDIT = _audit()


def audit_table() -> list[dict]:
    """The audit as rows (for a DataFrame)."""
    return [{"where": a.where, "field": a.field, "default": a.value, "source": a.source, "note": a.note}
            for a in AUDIT]


def table() -> list[dict]:
    """The catalogue as rows (for a DataFrame)."""
    return [{"switch": s.name, "default": s.default, "original code": s.original,
             "what the original does": s.what} for s in SWITCHES]
