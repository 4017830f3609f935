"""Multitask upper bound: retrain from the initial weights on the union of tasks 0..t."""

from __future__ import annotations

import copy

import torch

from dwa_core.approaches import register
from dwa_core.approaches.base import Approach
from dwa_core.data.types import Split


def union(splits: list[Split]) -> tuple[Split, torch.Tensor]:
    """Concatenate splits; returns the union and the (N,) task id of every sample."""
    x = torch.cat([s.x for s in splits])
    y = torch.cat([s.y for s in splits])
    ids = torch.cat([torch.full((len(s),), i, dtype=torch.long, device=s.y.device)
                     for i, s in enumerate(splits)])
    return Split(x, y), ids


@register("joint")
class Joint(Approach):
    """Train on all tasks seen so far, each sample through its own head (upper bound)."""

    def __init__(self, model, train, params=None, *, seed=0):
        super().__init__(model, train, params, seed=seed)
        self.initial = copy.deepcopy(model.state_dict())

    def before_task(self, t, task):
        self.model.load_state_dict(self.initial)

    def training_data(self, t, task, earlier=()):
        if len(earlier) != t:
            raise ValueError(f"joint needs the {t} tasks before task {t} (fit(t, task, earlier)), "
                             f"got {len(earlier)}")
        seen = [*earlier, task]
        return union([s.train for s in seen]), union([s.valid for s in seen])
