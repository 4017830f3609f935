"""HAT's compression analysis (docs/original-code.md#compression-experiment, HAT paper Fig. on network
capacity): train HAT on a
single first task for several c and record, per epoch, the masks at s_max, the fraction of active
units (a > 0.5) and of active weights (pre and post unit both active), and accuracy."""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch

from dwa_core import data
from dwa_core.config import ExperimentConfig
from dwa_core.experiment import build_approach, resolve_device, validate
from dwa_core.observers import Observer

COLUMNS = ("c", "epoch", "active_units", "active_weights", "train_acc", "valid_acc", "test_acc", "masks")


@torch.no_grad()
def active_fractions(model, masks: dict, threshold: float = 0.5) -> tuple[float, float]:
    """(fraction of gated units with a > threshold, fraction of gated weights whose post and pre
    units are both active; the first layer's inputs count as active)."""
    binary = {k: (m > threshold).float() for k, m in masks.items()}
    units = sum(b.sum() for b in binary.values()) / sum(b.numel() for b in binary.values())
    views = model.views(binary)
    weights = [v for k, v in views.items() if k.endswith(".weight")]
    shapes = [model.get_parameter(k).shape for k, v in views.items() if k.endswith(".weight")]
    active = sum(v.expand(s).sum() for v, s in zip(weights, shapes))
    return float(units), float(active / sum(torch.Size(s).numel() for s in shapes))


class _EpochMasks(Observer):
    """After each epoch of HAT on task 0: its masks at s_max, active fractions and test accuracy."""

    def __init__(self, approach, task, c: float, keep_masks: bool, rows: list):
        self.approach, self.task, self.c, self.keep_masks, self.rows = approach, task, c, keep_masks, rows

    def after_epoch(self, t, row):
        model, s_max = self.approach.model, self.approach.params.s_max
        masks = {k: m.detach().cpu() for k, m in model.masks(0, s_max).items()}
        units, weights = active_fractions(model, masks)
        _, test_acc = self.approach.test(0, self.task)
        self.rows.append({"c": self.c, "epoch": row["epoch"], "active_units": units,
                          "active_weights": weights, "train_acc": row["train_acc"],
                          "valid_acc": row["valid_acc"], "test_acc": test_acc,
                          "masks": masks if self.keep_masks else None})


def compression_analysis(cfg: ExperimentConfig, c_values, *, keep_masks: bool = True) -> pd.DataFrame:
    """One row per (c, epoch) after training HAT on the first task of cfg.benchmark (columns COLUMNS)."""
    rows: list = []
    for c in c_values:
        run = dataclasses.replace(cfg, approach="hat", approach_params={**cfg.approach_params, "c": c})
        plan = validate(run)
        bench = data.load_benchmark(run, resolve_device(run.device))
        approach = build_approach(run, plan, bench, resolve_device(run.device))
        task = bench.tasks[0]
        approach.fit(0, task, (), _EpochMasks(approach, task, c, keep_masks, rows))
    return pd.DataFrame(rows, columns=list(COLUMNS))
