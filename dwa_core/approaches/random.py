"""A stratified random classifier: the lower reference of the forgetting ratio
(docs/original-code.md#approaches)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dwa_core.approaches import register
from dwa_core.approaches.base import Approach
from dwa_core.fields import param, validate


@dataclass(frozen=True)
class RandomParams:
    """The random reference's one switch."""

    latest_task_labels: bool = param(
        False, original=True, what="predicts every earlier task with the latest task's labels",
        doc="True: predict every earlier task with the latest task's labels (the original code's)")

    def __post_init__(self):
        validate(self, "approach_params.")


@register("random")
class Random(Approach):
    """No training: predict shuffled copies of each task's own training labels (loss 0)."""

    Params = RandomParams
    agnostic = False  # a label-shuffling reference, without heads to choose between

    def fit(self, t, task, earlier=(), observer=None):
        self.labels = getattr(self, "labels", {})
        self.labels[t] = task.train.y.clone()
        self.latest = t
        return []

    def test(self, u, task, split="test"):
        source = self.labels[self.latest if self.params.latest_task_labels else u]
        target = getattr(task, split)
        n = len(target)
        order = torch.randperm(len(source), generator=self.generator).to(source.device)
        repeats = -(-n // len(source))
        predictions = source[order].repeat(repeats)[:n]
        return 0.0, (predictions == target.y).float().mean().item()

    def extra_state(self):
        return {"labels": getattr(self, "labels", {}), "latest": getattr(self, "latest", 0)}

    def load_extra_state(self, state):
        self.labels, self.latest = state["labels"], state["latest"]
