"""Learning without Forgetting (Li & Hoiem 2016), as in the original code
(docs/original-code.md#approaches)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dwa_core.approaches import register
from dwa_core.approaches.base import Approach, Outputs
from dwa_core.config import check, coerce_fields
from dwa_core.functional.regularizers import distillation_ce


def frozen_copy(model: nn.Module) -> nn.Module:
    """The reference model of lwf / lfl / ewc / imm: a deep copy, eval mode, no gradients."""
    old = copy.deepcopy(model).eval()
    for p in old.parameters():
        p.requires_grad_(False)
    return old


@dataclass(frozen=True)
class LwFParams:
    lamb: float = 2.0  # weight of the distillation terms
    temperature: float = 1.0  # T
    eps: float = 1e-5  # the original code's smoothing of the student's distribution (eps / n_classes)

    def __post_init__(self):
        coerce_fields(self, "approach_params.")
        check(self.lamb >= 0, "approach_params.lamb", ">= 0", self.lamb)
        check(self.temperature > 0, "approach_params.temperature", "> 0", self.temperature)
        check(self.eps >= 0, "approach_params.eps", ">= 0", self.eps)


@dataclass(frozen=True)
class FeatureOutputs(Outputs):
    """LwF's and LFL's forward: the logits, the batch's inputs x and the features h the heads read
    (B, units), from which `loss` compares the frozen old model's heads or features."""

    x: torch.Tensor
    features: torch.Tensor


class DistillsFromOldModel(Approach):
    """Base of LwF and LFL: a frozen copy of the model after each task, kept in checkpoints."""

    old: nn.Module | None = None

    def after_task(self, t, task):
        self.old = frozen_copy(self.model)

    def extra_state(self):
        return {"old": None if self.old is None else self.old.state_dict()}

    def load_extra_state(self, state):
        self.old = None
        if state["old"] is not None:
            self.old = frozen_copy(self.model)
            self.old.load_state_dict(state["old"])


@register("lwf")
class LwF(DistillsFromOldModel):
    """CE(head t) + lamb * sum_{u<t} distillation-CE(head u, frozen old model's head u)."""

    Params = LwFParams
    clip_grad = 100.0

    def __init__(self, model, train, params=None, *, seed=0):
        super().__init__(model, train, params, seed=seed)
        self.old: nn.Module | None = None  # the model after the previous task

    def forward(self, x, t, batch=None):
        h = self.model.features(x)  # (B, units): the old heads are distilled from it in loss()
        return FeatureOutputs(self.model.last(h, t), x, h)

    def distillation(self, outputs: FeatureOutputs, t: int) -> torch.Tensor | None:
        """Sum over the previous tasks' heads of the distillation-CE on the batch of `outputs`."""
        if self.old is None or t == 0:
            return None
        with torch.no_grad():
            h_old = self.old.features(outputs.x)
        p = self.params
        return sum(distillation_ce(self.model.last(outputs.features, u), self.old.last(h_old, u),
                                   p.temperature, p.eps) for u in range(t))

    def loss(self, outputs, y, t, batch=None):
        ce = F.cross_entropy(outputs.logits, y)
        dist = self.distillation(outputs, t)
        return ce if dist is None else ce + self.params.lamb * dist
