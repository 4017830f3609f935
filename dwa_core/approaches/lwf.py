"""Learning without Forgetting (Li & Hoiem 2016), as in the original code
(docs/original-code.md#approaches)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dwa_core.approaches import register
from dwa_core.approaches.shared import DistillsFromOldModel, FeatureOutputs
from dwa_core.fields import Bounds, param, validate
from dwa_core.functional.regularizers import distillation_ce


@dataclass(frozen=True)
class LwFParams:
    """LwF's hyper-parameters (Li & Hoiem 2016)."""

    lamb: float = param(2.0, bounds=Bounds(0), source="HAT paper's grid, original default",
                        doc="weight λ of the distillation terms")
    temperature: float = param(1.0, bounds=Bounds(0, low_open=True),
                               source="HAT paper's grid, original default",
                               doc="temperature T of the distillation softmax")
    eps: float = param(1e-5, bounds=Bounds(0),
                       doc="the original code's smoothing of the student's distribution (eps / n_classes)")

    def __post_init__(self):
        validate(self, "approach_params.")


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
