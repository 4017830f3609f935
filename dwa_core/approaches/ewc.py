"""Elastic Weight Consolidation (Kirkpatrick et al. 2017), as in the original code
(docs/original-code.md#ewc)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from dwa_core.approaches import register
from dwa_core.approaches.base import Approach
from dwa_core.config import check
from dwa_core.functional.fisher import fisher_diagonal, iterate_batches, merge_fisher
from dwa_core.functional.regularizers import ewc_penalty, old_params_of, parameters_of


@dataclass(frozen=True)
class EWCParams:
    lamb: float = 5000.0  # weight of the quadratic penalty
    fisher_batch_size: int = 20  # the original code's batches for the Fisher
    # True: never zero gradients in the Fisher loop (the original DWA code's bug)
    accumulate_gradients: bool = False

    def __post_init__(self):
        check(self.lamb >= 0, "approach_params.lamb", ">= 0", self.lamb)
        check(self.fisher_batch_size >= 1, "approach_params.fisher_batch_size", ">= 1",
              self.fisher_batch_size)


def task_fisher(approach: Approach, t: int, task, batch_size: int, accumulate: bool) -> dict:
    """Empirical Fisher of task t's training set under the approach's own criterion (original code:
    train mode, batches of 20, the regulariser included for t >= 1)."""
    return fisher_diagonal(
        approach.model, iterate_batches(task.train.x, task.train.y, batch_size),
        lambda x, y: approach.loss(approach.forward(x, t), y, t), accumulate_gradients=accumulate)


@register("ewc")
class EWC(Approach):
    """CE(head t) + lamb * sum_k 1/2 F_k (theta_k - theta*_k)^2 for t >= 1, F a running mean over tasks."""

    Params = EWCParams
    clip_grad = 100.0

    def __init__(self, model, train, params=None, *, seed=0):
        super().__init__(model, train, params, seed=seed)
        self.old_params: dict | None = None  # theta*: the weights after the previous task
        self.fisher: dict | None = None

    def penalty(self):
        if self.fisher is None:  # task 0: nothing to protect yet
            return None
        return ewc_penalty(self.model.named_parameters(), self.old_params, self.fisher)

    def loss(self, outputs, y, t, batch=None):
        ce = F.cross_entropy(outputs, y)
        penalty = self.penalty()
        return ce if penalty is None else ce + self.params.lamb * penalty

    def after_task(self, t, task):
        # Original order: theta* is stored before the Fisher, whose criterion includes the penalty; at
        # theta = theta* the penalty's gradient is 0, so this is the Fisher of the CE alone.
        self.old_params = parameters_of(self.model)
        p = self.params
        new = task_fisher(self, t, task, p.fisher_batch_size, p.accumulate_gradients)
        self.fisher = merge_fisher(self.fisher, new, t)

    def extra_state(self):
        return {"old_params": self.old_params, "fisher": self.fisher}

    def load_extra_state(self, state):
        self.old_params, self.fisher = old_params_of(state), state["fisher"]
