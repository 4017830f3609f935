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
from dwa_core.approaches.ewc import FisherForm, FisherMode, task_fisher
from dwa_core.config import check, coerce_fields
from dwa_core.functional.fisher import sum_fisher
from dwa_core.functional.regularizers import (
    l2_transfer,
    load_parameters,
    mean_merge,
    mode_merge,
    old_params_of,
    parameters_of,
)


@dataclass(frozen=True)
class IMMMeanParams:
    regularizer: float = 1e-4  # r: weight of the L2-transfer penalty
    # False (the paper): merge the shared trunk, each task keeps its head. True (the original code):
    # merge every parameter, so the new head is averaged with its own random init,
    # (theta_t + t * theta_init) / (t + 1): 80 % init at t = 4.
    merge_heads: bool = False

    def __post_init__(self):
        coerce_fields(self, "approach_params.")
        check(self.regularizer >= 0, "approach_params.regularizer", ">= 0", self.regularizer)


@dataclass(frozen=True)
class IMMModeParams:
    lamb: float = 0.01  # weight of the L2-transfer penalty
    # The original code's Fisher-weighted merge assigned to a local variable and had no effect
    # (docs/original-code.md#approaches), so its imm-mode is L2 transfer alone: merge=False reproduces that.
    merge: bool = True
    fisher_form: FisherForm = "per-sample"  # as EWC's; "batch": the original code's form
    fisher_batch_size: int = 20
    fisher_mode: FisherMode = "eval"  # as EWC's; "train": dropout active, the original code's
    # False (the paper): the heads are not merged (see IMMMeanParams); True: the original code.
    merge_heads: bool = False

    def __post_init__(self):
        coerce_fields(self, "approach_params.")
        check(self.lamb >= 0, "approach_params.lamb", ">= 0", self.lamb)
        check(self.fisher_batch_size >= 1, "approach_params.fisher_batch_size", ">= 1",
              self.fisher_batch_size)


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
        return {k: v for k, v in merged.items() if not k.startswith("last.")}

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
