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
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


# ---- generated files: the original-code preset and the README's switch list ---------------------
PRESET = Path(__file__).parent / "presets" / "original-code.json"
README = Path(__file__).parent.parent / "README.md"
START, END = "<!-- fidelity-switches start -->", "<!-- fidelity-switches end -->"
_PRESET_DOC = ("The original code's defaults and behaviour: every fidelity switch set to the original "
               "(docs/original-code.md#dwa). Generated by dwa_core.fidelity.write_generated().")


def _original_values(cls: type) -> dict:
    """{field: the original code's value} of the fields of `cls` that declare one (`code_value`,
    else the switch's `original`), in declaration order."""
    out = {}
    for name, spec in specs(cls).items():
        if spec is not None and spec.code_value is not UNSET:
            out[name] = spec.code_value
        elif spec is not None and spec.is_switch:
            out[name] = spec.original
    return out


def original_code_preset() -> dict:
    """The `original-code` preset: DWA with the original code's training values, every DWA and
    training switch at the original code's value, and the DWA network's gate."""
    return {"_doc": _PRESET_DOC, "approach": "dwa", "train": _original_values(TrainConfig),
            "approach_params": _original_values(approaches.get("dwa").Params),
            "network_params": {s.field: s.original for s in SWITCHES if s.owner == "network"}}


def preset_text() -> str:
    return json.dumps(original_code_preset(), indent=2, ensure_ascii=False) + "\n"


def _cell(value) -> str:
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def switch_list() -> str:
    """The README's switch list (markdown table), one row per switch, from SWITCHES."""
    rows = ["| switch | default (the papers) | original code | what the original code does |",
            "|---|---|---|---|"]
    rows += [f"| `{s.name}` | {_cell(s.default)} | {_cell(s.original)} | "
             f"{s.what.replace('|', chr(92) + '|')} |" for s in SWITCHES]
    return "\n".join(rows)


def readme_with_switches(text: str) -> str:
    """`text` (the README) with the block between START and END replaced by `switch_list()`.
    Raises ValueError when the markers are missing."""
    if START not in text or END not in text:
        raise ValueError(f"README: no {START} ... {END} block to fill")
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    return f"{before}{START}\n{switch_list()}\n{END}{after}"


def write_generated(preset: Path = PRESET, readme: Path = README) -> None:
    """Rewrite the committed preset and the README block from the declarations
    (`python -c "from dwa_core import fidelity; fidelity.write_generated()"`; tests/test_fields.py
    fails while they differ)."""
    preset.write_text(preset_text(), encoding="utf-8")
    readme.write_text(readme_with_switches(readme.read_text(encoding="utf-8")), encoding="utf-8")
