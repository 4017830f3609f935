"""Elastic Weight Consolidation (Kirkpatrick et al. 2017), as in the original code
(docs/original-code.md#ewc).

The Fisher is by default the papers' empirical Fisher, the mean of per-sample squared gradients,
computed with the model in eval mode, and the old tasks' Fisher diagonals are summed (one penalty per
task, Kirkpatrick et al. 2017). Fidelity switches: `fisher_form="batch"` (the original code's squared
mini-batch gradients), `fisher_mode="train"` (dropout active, as the original code) and
`fisher_combine="mean"` (the original code's running mean over tasks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch.nn.functional as F

from dwa_core.approaches import register
from dwa_core.approaches.base import Approach
from dwa_core.config import check, coerce_fields
from dwa_core.functional.fisher import (
    FisherCombine,
    combine_fisher,
    fisher_diagonal,
    iterate_batches,
    per_sample_fisher,
)
from dwa_core.functional.regularizers import ewc_penalty, old_params_of, parameters_of

FisherForm = Literal["per-sample", "batch"]
FisherMode = Literal["eval", "train"]


@dataclass(frozen=True)
class EWCParams:
    lamb: float = 5000.0  # weight of the quadratic penalty
    # "per-sample": mean of per-sample squared gradients (the papers); "batch": the original code's
    # |B| * (mean gradient of a batch)^2, about 15x smaller after task 0 on split-digits.
    fisher_form: FisherForm = "per-sample"
    fisher_batch_size: int = 20  # the original code's batches (per-sample form: the vmap chunk)
    accumulate_gradients: bool = False  # batch form only: never zero gradients (the DWA code's bug)
    # The model's mode during the Fisher pass. "eval": dropout off, a deterministic estimate;
    # "train": the original code's, dropout active (12-15x the eval-mode Fisher on the default MLP).
    fisher_mode: FisherMode = "eval"
    # How the old tasks' Fisher diagonals combine. "sum": Σ_k F_k, one penalty per task (the paper);
    # "mean": the original code's running mean (F_t + t F) / (t + 1), each old task's weight 1/(t+1).
    fisher_combine: FisherCombine = "sum"

    def __post_init__(self):
        coerce_fields(self, "approach_params.")
        check(self.lamb >= 0, "approach_params.lamb", ">= 0", self.lamb)
        check(self.fisher_batch_size >= 1, "approach_params.fisher_batch_size", ">= 1",
              self.fisher_batch_size)
        check(not self.accumulate_gradients or self.fisher_form == "batch",
              "approach_params.accumulate_gradients", "false unless fisher_form='batch'",
              self.accumulate_gradients)


def task_fisher(approach: Approach, t: int, task, batch_size: int, form: FisherForm = "per-sample",
                accumulate: bool = False, mode: FisherMode = "eval") -> dict:
    """Empirical Fisher of task t's training set under the approach's own criterion (CE of head t
    plus `approach.penalty_of(params)`); `form` and `mode` ("eval" | "train": the model's mode,
    i.e. dropout off or on) as in EWCParams. {name: tensor shaped like the parameter}."""
    batches = iterate_batches(task.train.x, task.train.y, batch_size)
    train_mode = mode == "train"
    if form == "per-sample":
        return per_sample_fisher(approach.model, batches, t, penalty=approach.penalty_of,
                                 train_mode=train_mode)
    return fisher_diagonal(
        approach.model, batches, lambda x, y: approach.loss(approach.forward(x, t), y, t),
        accumulate_gradients=accumulate, train_mode=train_mode)


@register("ewc")
class EWC(Approach):
    """CE(head t) + lamb * sum_k 1/2 F_k (theta_k - theta*_k)^2 for t >= 1, F the sum of the old
    tasks' Fisher diagonals (or their running mean: fisher_combine="mean")."""

    Params = EWCParams
    clip_grad = 100.0

    def __init__(self, model, train, params=None, *, seed=0):
        super().__init__(model, train, params, seed=seed)
        self.old_params: dict | None = None  # theta*: the weights after the previous task
        self.fisher: dict | None = None

    def penalty(self):
        """The EWC penalty (without lamb) of the current weights; None before task 1."""
        if self.fisher is None:
            return None
        return ewc_penalty(self.model.named_parameters(), self.old_params, self.fisher)

    def penalty_of(self, params: dict):
        """lamb * EWC penalty of the parameters {name: tensor}; None before task 1."""
        if self.fisher is None:  # task 0: nothing to protect yet
            return None
        return self.params.lamb * ewc_penalty(params.items(), self.old_params, self.fisher)

    def loss(self, outputs, y, t, batch=None):
        ce = F.cross_entropy(outputs.logits, y)
        penalty = self.penalty_of(dict(self.model.named_parameters()))
        return ce if penalty is None else ce + penalty

    def after_task(self, t, task):
        # Original order: theta* is stored before the Fisher, whose criterion includes the penalty;
        # at theta = theta* the penalty's gradient is 0, so this is the Fisher of the CE alone.
        self.old_params = parameters_of(self.model)
        p = self.params
        new = task_fisher(self, t, task, p.fisher_batch_size, p.fisher_form, p.accumulate_gradients,
                          p.fisher_mode)
        self.fisher = combine_fisher(self.fisher, new, t, p.fisher_combine)

    def extra_state(self):
        return {"old_params": self.old_params, "fisher": self.fisher}

    def load_extra_state(self, state):
        self.old_params, self.fisher = old_params_of(state), state["fisher"]
