"""What tells the session's runs apart, in the words of the controls: `differences(cfg, first)` is
the list of 'field value' a run changes against the first run of the session (`shown` forms:
'curriculum linear:3:0.2', 'lr 0.05'), the overlay's legend and the table's "differs from run 1".

Each section is compared fully typed (its dataclass with its defaults), so a value given in one run
and left at its default in the other is no difference; an approach's (a benchmark's) parameters
are compared only between runs of the same approach (benchmark), and network options only where
both runs' networks have them (HAT's network has no `use_stem`)."""

from __future__ import annotations

import dataclasses

from dwa_core import approaches, data
from dwa_core.config import ExperimentConfig, build_params
from dwa_core.widgets.controls import same_value, shown

TOP = ("benchmark", "approach", "network", "seed")


def typed_sections(cfg: ExperimentConfig) -> dict[str, dict]:
    """{section: {field: typed value}} of a config: the top row, train, and the benchmark's and
    approach's parameters with their defaults filled in; network options as given."""
    bench = build_params(data.get_spec(cfg.benchmark).Params, cfg.benchmark_params, "benchmark_params")
    approach = build_params(approaches.get(cfg.approach).Params, cfg.approach_params, "approach_params")
    return {"top": {k: getattr(cfg, k) for k in TOP}, "train": dataclasses.asdict(cfg.train),
            "benchmark": _fields(bench), "network": dict(cfg.network_params), "approach": _fields(approach)}


def _fields(instance) -> dict:
    return {f.name: getattr(instance, f.name) for f in dataclasses.fields(instance) if f.init}


def differences(cfg: ExperimentConfig, first: ExperimentConfig) -> list[str]:
    """['field value', ...] of what `cfg` changes against `first` (see the module docstring)."""
    mine, theirs = typed_sections(cfg), typed_sections(first)
    skip = {"benchmark"} if cfg.benchmark != first.benchmark else set()
    skip |= {"approach"} if cfg.approach != first.approach else set()
    out = []
    for section, values in mine.items():
        if section in skip:
            continue
        other = theirs[section]
        out += [f"{k} {shown(v) or 'None'}" for k, v in values.items()
                if k in other and not same_value(v, other[k])]
    return out


def run_labels(configs: list[ExperimentConfig]) -> list[str]:
    """One legend label per run: '1: hat' for the first, then 'k: what differs' ('k: same controls'
    when nothing the controls show differs)."""
    if not configs:
        return []
    first = configs[0]
    labels = [f"1: {first.approach}"]
    for k, cfg in enumerate(configs[1:], start=2):
        labels.append(f"{k}: {', '.join(differences(cfg, first)) or 'same controls'}")
    return labels
