"""Incremental Moment Matching (Lee et al. 2017), mean and mode, as in the original code
(docs/original-code.md#approaches).

Both train with an L2-transfer penalty towards the previous (merged) model and merge the shared
weights after every task; each task keeps its own head (the original code also merged the heads:
`merge_heads=True`). `imm-mode` weighs the merge with a running sum of Fisher diagonals, by
default the per-sample empirical Fisher (the original code's batch form: `fisher_form="batch"`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from dwa_core.approaches import register
from dwa_core.approaches.base import Approach
from dwa_core.approaches.shared import fisher_form_param, fisher_mode_param
from dwa_core.fields import Bounds, param, validate
from dwa_core.functional.fisher import FisherForm, FisherMode, sum_fisher, task_fisher
from dwa_core.functional.regularizers import (
    l2_transfer,
    load_parameters,
    mean_merge,
    mode_merge,
    old_params_of,
    parameters_of,
)
from dwa_core.models.heads import head_parameter_names


def merge_heads_param(source: str = "", what: str = ""):
    """`merge_heads`: whether the merge covers the heads (the original code: a switch)."""
    return param(False, original=True, source=source, what=what,
                 doc="False (the paper): merge the shared trunk, each task keeps its head; True (the "
                     "original code): merge every parameter, so a new head is averaged with its own "
                     "random init, (θ_t + t·θ_init)/(t + 1): 80 % init at t = 4")


@dataclass(frozen=True)
class IMMMeanParams:
    """IMM-mean's hyper-parameters (Lee et al. 2017)."""

    regularizer: float = param(1e-4, bounds=Bounds(0), source="original default",
                               doc="weight r of the L2-transfer penalty r·½ Σ (θ - θ_old)²")
    merge_heads: bool = merge_heads_param(
        "IMM: the trunk is merged, each task keeps its head",
        "merges the heads too: a new head is averaged with its random init (80 % init at t = 4)")

    def __post_init__(self):
        validate(self, "approach_params.")


@dataclass(frozen=True)
class IMMModeParams:
    """IMM-mode's hyper-parameters (Lee et al. 2017)."""

    lamb: float = param(0.01, bounds=Bounds(0), source="original default",
                        doc="weight λ of the L2-transfer penalty λ·½ Σ (θ - θ_old)²")
    merge: bool = param(True, original=False, source="IMM paper (the original's merge is a no-op: switch)",
                        what="the Fisher-weighted merge is computed into a local variable and lost: L2 "
                             "transfer only",
                        doc="True: the Fisher-weighted merge after each task; False: the original code's "
                            "no-op merge (docs/original-code.md#approaches), L2 transfer alone")
    fisher_form: FisherForm = fisher_form_param(
        what="Fisher = |B|·(mean gradient of a batch of 20)², not the mean of per-sample squared gradients")
    fisher_batch_size: int = param(20, bounds=Bounds(1),
                                   doc="the batch form's batches (the original code's 20)")
    fisher_mode: FisherMode = fisher_mode_param(
        "as EWC's (switch: 'train')", "the Fisher of the merge weights is computed with dropout active")
    merge_heads: bool = merge_heads_param(
        what="the intended merge covers the heads too (the original's merge itself is a no-op)")

    def __post_init__(self):
        validate(self, "approach_params.")


class _L2Transfer(Approach):
    """CE(head t) + weight * 1/2 sum (theta - theta_old)^2 for t >= 1; theta_old = self.old_params."""

    def __init__(self, model, train, params=None, *, seed=0):
        super().__init__(model, train, params, seed=seed)
        self.old_params: dict | None = None  # the merged weights after the previous task

    def penalty_weight(self) -> float:
        raise NotImplementedError

    def penalty_of(self, params: dict):
        """weight * L2-transfer penalty of the parameters {name: tensor}; None on task 0."""
        if self.old_params is None:
            return None
        return self.penalty_weight() * l2_transfer(params.items(), self.old_params)

    def loss(self, outputs, y, t, batch=None):
        ce = F.cross_entropy(outputs.logits, y)
        penalty = self.penalty_of(dict(self.model.named_parameters()))
        return ce if penalty is None else ce + penalty

    def merged(self, current: dict, merged: dict) -> dict:
        """The parameters the merge replaces: all, or the shared trunk only (merge_heads=False)."""
        if self.params.merge_heads:
            return merged
        heads = head_parameter_names(self.model)
        return {k: v for k, v in merged.items() if k not in heads}

    def extra_state(self):
        return {"old_params": self.old_params}

    def load_extra_state(self, state):
        self.old_params = old_params_of(state)


@register("imm-mean")
class IMMMean(_L2Transfer):
    """L2 transfer, then theta <- (theta_t + t * theta_prev_merged) / (t + 1) after each task t >= 1."""

    Params = IMMMeanParams
    clip_grad = 10000.0

    def penalty_weight(self):
        return self.params.regularizer

    def after_task(self, t, task):
        if self.old_params is not None:
            current = parameters_of(self.model)
            load_parameters(self.model, self.merged(current, mean_merge(current, self.old_params, t)))
        self.old_params = parameters_of(self.model)


@register("imm-mode")
class IMMMode(_L2Transfer):
    """L2 transfer, then theta <- (F_t theta + F_old theta_old) / (F_t + F_old), F_old += F_t."""

    Params = IMMModeParams
    clip_grad = 1000.0

    def __init__(self, model, train, params=None, *, seed=0):
        super().__init__(model, train, params, seed=seed)
        self.fisher: dict | None = None  # sum of the Fisher diagonals of the tasks so far

    def penalty_weight(self):
        return self.params.lamb

    def after_task(self, t, task):
        # The original code's Fisher criterion includes the penalty towards the previous merged model.
        p = self.params
        new = task_fisher(self, t, task, p.fisher_batch_size, p.fisher_form, mode=p.fisher_mode)
        if self.old_params is not None and p.merge:
            current = parameters_of(self.model)
            merged = mode_merge(current, self.old_params, new, self.fisher)
            load_parameters(self.model, self.merged(current, merged))
        self.fisher = sum_fisher(self.fisher, new)
        self.old_params = parameters_of(self.model)

    def extra_state(self):
        return {"old_params": self.old_params, "fisher": self.fisher}

    def load_extra_state(self, state):
        self.old_params, self.fisher = old_params_of(state), state["fisher"]
