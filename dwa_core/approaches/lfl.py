"""Less-Forgetting Learning (Jung et al. 2016), as in the seed (seed_spec §4).

The seed used a network variant (alexnet_lfl) without dropout after fc2 that also returned the
penultimate activation; here the plain networks' `features` is run without its final dropout."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dwa_core.approaches import register
from dwa_core.approaches.lwf import DistillsFromOldModel
from dwa_core.config import check
from dwa_core.functional.regularizers import feature_penalty


def penultimate(model: nn.Module, x: torch.Tensor, dropout: bool = False) -> torch.Tensor:
    """h = ReLU(last hidden layer), the input of the heads; without the final dropout unless asked."""
    features = model.features
    if not dropout and isinstance(features[-1], nn.Dropout):
        features = features[:-1]
    return features(x)


@dataclass(frozen=True)
class LFLParams:
    lamb: float = 0.05  # weight of the feature penalty
    dropout_after_penultimate: bool = False  # the seed's alexnet_lfl had none

    def __post_init__(self):
        check(self.lamb >= 0, "approach_params.lamb", ">= 0", self.lamb)


@register("lfl")
class LFL(DistillsFromOldModel):
    """CE(head t) + lamb * 1/2 ||h_old - h||^2 (sum over batch and units) for t >= 1."""

    Params = LFLParams
    clip_grad = 200.0

    def __init__(self, model, train, params=None, *, seed=0):
        super().__init__(model, train, params, seed=seed)
        self.old: nn.Module | None = None
        self._x = self._h = None

    def forward(self, x, t):
        self._x = x
        self._h = penultimate(self.model, x, self.params.dropout_after_penultimate)  # (B, units)
        return self.model.last(self._h, t)

    def penalty(self) -> torch.Tensor | None:
        if self.old is None:
            return None
        with torch.no_grad():
            h_old = penultimate(self.old, self._x)  # eval mode: no dropout
        return feature_penalty(self._h, h_old)

    def loss(self, outputs, y, t):
        ce = F.cross_entropy(outputs, y)
        penalty = self.penalty()
        return ce if penalty is None else ce + self.params.lamb * penalty
