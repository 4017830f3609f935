"""Less-Forgetting Learning (Jung et al. 2016), as in the original code
(docs/original-code.md#approaches), with
two fixes.

The original code used a network variant (alexnet_lfl) without dropout after fc2 that also returned the
penultimate activation; here the plain networks' `features` is run without its final dropout.

What broke the original code's form on our MLP (3x800, dropout 0.5; lr 0.05, batch 64; measured in the
README's LFL note): split-digits final average accuracy 0.47, split-fmnist 0.57, later tasks at
chance. Two causes, both in the penalty lamb * 1/2 ||h_old - h||^2:
1. Dropout mismatch. The current model's h came from the training forward, with dropout active in
   every earlier layer, while the frozen old model runs in eval mode. So the penalty is large
   (about 1,400 per batch at the first step of task 1 on digits) although no weight has moved,
   and the cheapest way to lower it is to shrink the features: they collapse (the penalty falls
   to ~1 while the CE of tasks 2-4 stays at ln 2). Fix: the penalty compares dropout-free passes
   of both models, so it is 0 at theta = theta_old and measures only real drift.
2. Step size. Summed over the batch, the per-sample weight is lamb * B = 3.2. One SGD step on the
   last hidden layer moves h by about -lr * lamb * ||a||^2 * (h - h_old), a = that layer's input,
   so it overshoots when lr * lamb * ||a||^2 > 2: ||a||^2 is about 46 (digits) and 264 (fmnist)
   here, giving 7 and 42, and the oscillation wipes out task 0 (fmnist task 0: 0.999 -> 0.5 even
   without the dropout mismatch). Fix: the batch mean, lamb = 0.05 (0.11 and 0.66 here).
`reduction="sum", seed_dropout_mismatch=True` (lamb 0.05) restores the original code exactly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from dwa_core.approaches import register
from dwa_core.approaches.shared import DistillsFromOldModel, FeatureOutputs
from dwa_core.fields import Bounds, param, validate
from dwa_core.functional.regularizers import feature_penalty


def penultimate(model: nn.Module, x: torch.Tensor, dropout: bool = False) -> torch.Tensor:
    """h = ReLU(last hidden layer), the input of the heads; without the final dropout unless asked."""
    features = model.features
    if not dropout and isinstance(features[-1], nn.Dropout):
        features = features[:-1]
    return features(x)


def clean_penultimate(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """h with every dropout layer skipped (what an eval-mode forward gives), gradients kept."""
    for layer in model.features:
        if not isinstance(layer, nn.Dropout):
            x = layer(x)
    return x


@dataclass(frozen=True)
class LFLParams:
    """LFL's hyper-parameters (Jung et al. 2016)."""

    lamb: float = param(0.05, bounds=Bounds(0), source="original default",
                        doc="weight λ of the feature penalty; stable while lr·λ·||a||² < 2 (module "
                            "docstring)")
    reduction: Literal["mean", "sum"] = param(
        "mean", original="sum", source="per-sample penalty (switch: 'sum')",
        what="the feature penalty is summed over the batch",
        doc="how the penalty reduces over the batch: 'mean', or the original code's 'sum'")
    seed_dropout_mismatch: bool = param(
        False, original=True, what="penalises dropout-noised features against the old model's clean ones",
        doc="True: penalise the dropout-noised h of the training forward, as the original code did")
    dropout_after_penultimate: bool = param(
        False, doc="dropout on h before the heads (the original code's alexnet_lfl had none)")

    def __post_init__(self):
        validate(self, "approach_params.")


@register("lfl")
class LFL(DistillsFromOldModel):
    """CE(head t) + lamb * 1/2 ||h_old - h||^2 (units summed, batch mean by default) for t >= 1."""

    Params = LFLParams
    clip_grad = 200.0

    def __init__(self, model, train, params=None, *, seed=0):
        super().__init__(model, train, params, seed=seed)
        self.old: nn.Module | None = None

    def forward(self, x, t, batch=None):
        h = penultimate(self.model, x, self.params.dropout_after_penultimate)  # (B, units)
        return FeatureOutputs(self.model.last(h, t), x, h)

    def penalty(self, outputs: FeatureOutputs) -> torch.Tensor | None:
        """1/2 ||h_old - h||^2 of the batch of `outputs` (reduced as `reduction`); None on task 0."""
        if self.old is None:
            return None
        with torch.no_grad():
            h_old = penultimate(self.old, outputs.x)  # eval mode: no dropout
        h = outputs.features
        if self.model.training and not self.params.seed_dropout_mismatch:
            h = clean_penultimate(self.model, outputs.x)  # a second pass, dropout-free like h_old
        return feature_penalty(h, h_old, self.params.reduction)

    def loss(self, outputs, y, t, batch=None):
        ce = F.cross_entropy(outputs.logits, y)
        penalty = self.penalty(outputs)
        return ce if penalty is None else ce + self.params.lamb * penalty
