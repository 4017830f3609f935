"""The run protocols of the committed figures, the notebooks and the explorer (`PROFILES`): which
benchmark, seeds, training protocol and network sizes a profile means, and `profile_config`, the
ExperimentConfig of one of its runs. Imported by figures.py, the explorer, the walkthrough's
parameter check, the notebooks and the tests; it imports none of them.

smoke: split-digits (offline data), 100 samples per class, 2 seeds, small networks trained long
enough at a constant lr to forget (a few minutes on 2 CPU cores). paper: the paper's settings on
`mixture` (paper §4.1), 10 seeds."""

from __future__ import annotations

from dataclasses import replace

from dwa_core import approaches
from dwa_core.config import ExperimentConfig, TrainConfig

PAPER_APPROACHES = ("dwa", "ewc", "sgd", "hat")  # Fig. 5 / Fig. 6 panels, in the paper's order

# "train": TrainConfig fields, the one protocol of every approach of a profile; "network_params": per
# network family; "overrides": per approach, {"approach_params": ..., "network_params": ...} on top
# of the rest (never "train": the panels of one figure compare approaches under one protocol).
PROFILES = {
    # A forgetting-prone smoke setting: one protocol for every approach, 30 epochs of plain SGD at a
    # constant lr 0.1 (no decay, no early stop) on 3x50 networks (the plain MLP without dropout);
    # split-digits with 30 samples per class and 3 epochs hardly forgot at all. Every approach keeps
    # its papers' hyper-parameters; DWA's curriculum spans the first half of the epochs, as the paper's
    # 100 of 200.
    "smoke": {"benchmark": "split-digits", "benchmark_params": {"per_class": 100}, "seeds": [0, 1],
              "train": {"epochs": 30, "lr": 0.1, "lr_schedule": "original-code"},
              "network_params": {"plain": {"hidden": 50, "layers": 3, "dropout": 0.0},
                                 "hat": {"hidden": 50, "layers": 3}, "dwa": {"hidden": 50, "layers": 3}},
              "overrides": {"dwa": {"approach_params": {"curriculum": "linear:15:0.2"}}}},
    "paper": {"benchmark": "mixture", "benchmark_params": {}, "train": {"epochs": 200},
              "seeds": list(range(10))},
}


def profile_config(profile: str, approach: str, seed: int = 0, device: str = "cpu", data_dir=None,
                   output_dir: str = "results", **approach_params) -> ExperimentConfig:
    """The ExperimentConfig of one run of `profile` (see PROFILES); approach_params given here
    override the profile's."""
    p = PROFILES[profile]
    over = p.get("overrides", {}).get(approach, {})
    family = approaches.get(approach).family if approach in approaches.names() else None
    network = {**p.get("network_params", {}).get(family, {}), **over.get("network_params", {})}
    kwargs = {"data_dir": data_dir} if data_dir else {}
    return ExperimentConfig(benchmark=p["benchmark"], approach=approach, seed=seed, device=device,
                            benchmark_params=dict(p["benchmark_params"]),
                            approach_params={**over.get("approach_params", {}), **approach_params},
                            network_params=network,
                            train=replace(TrainConfig(), **p.get("train", {})),
                            output_dir=output_dir, **kwargs)


def available(names) -> list[str]:
    """The approaches of `names` that are registered (helpers are still adding some)."""
    have = set(approaches.names())
    return [n for n in names if n in have]
