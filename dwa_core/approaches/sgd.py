"""The SGD-family baselines of docs/original-code.md#approaches: fine-tuning, frozen trunk, restart per
task."""

from __future__ import annotations

import copy

from dwa_core.approaches import register
from dwa_core.approaches.base import Approach
from dwa_core.models.heads import head_parameter_names


@register("sgd")
class SGD(Approach):
    """Fine-tune the shared network and the current head on each task in turn (lower bound)."""


@register("sgd-frozen")
class SGDFrozen(Approach):
    """Train everything on task 0, then only the heads of later tasks (the trunk is frozen)."""

    def before_task(self, t, task):
        if t > 0:
            heads = head_parameter_names(self.model)
            for name, p in self.model.named_parameters():
                p.requires_grad_(name in heads)


@register("sgd-restart")
class SGDRestart(Approach):
    """An independent model per task: restart from the initial weights before every task."""

    agnostic = False  # each task's trunk is swapped in by `test`: no single model to ask

    def __init__(self, model, train, params=None, *, seed=0):
        super().__init__(model, train, params, seed=seed)
        self.initial = copy.deepcopy(model.state_dict())

    def before_task(self, t, task):
        # Heads of earlier tasks keep their trained weights: each task's model is (trunk_t, head_t).
        # Evaluating an old task after restarting would use the new trunk, so we keep one trunk
        # per task and swap it in at test time.
        heads = head_parameter_names(self.model)
        trunk = {k: v for k, v in self.initial.items() if k not in heads}
        self.model.load_state_dict(trunk, strict=False)

    def after_task(self, t, task):
        self.trunks = getattr(self, "trunks", {})
        heads = head_parameter_names(self.model)
        self.trunks[t] = {k: v.clone() for k, v in self.model.state_dict().items() if k not in heads}

    def test(self, u, task, split="test"):
        current = copy.deepcopy(self.model.state_dict())
        self.model.load_state_dict(self.trunks[u], strict=False)
        try:
            return super().test(u, task, split)
        finally:
            self.model.load_state_dict(current)

    def extra_state(self):
        return {"trunks": getattr(self, "trunks", {})}

    def load_extra_state(self, state):
        self.trunks = state["trunks"]
