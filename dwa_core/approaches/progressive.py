"""Progressive networks (docs/original-code.md#approaches `progressive`): a new column per task, earlier
columns frozen."""

from __future__ import annotations

from dwa_core.approaches import register
from dwa_core.approaches.base import Approach


@register("progressive")
class Progressive(Approach):
    """Train only column t, its lateral adapters and head t; everything else has requires_grad False,
    so earlier tasks' outputs never change (the base loop optimises trainable parameters only)."""

    family = "progressive"
    clip_grad = 10000.0

    def before_task(self, t, task):
        trained = {id(p) for p in self.model.task_parameters(t)}
        for p in self.model.parameters():
            p.requires_grad_(id(p) in trained)
