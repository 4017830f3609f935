"""Elastic Weight Consolidation (Kirkpatrick et al. 2017), as in the original code
(docs/original-code.md#ewc).

The Fisher is by default the papers' empirical Fisher, the mean of per-sample squared gradients,
computed with the model in eval mode, and the old tasks' Fisher diagonals are summed (one penalty per
task, Kirkpatrick et al. 2017). Fidelity switches: `fisher_form="batch"` (the original code's squared
mini-batch gradients), `fisher_mode="train"` (dropout active, as the original code) and
`fisher_combine="mean"` (the original code's running mean over tasks)."""

from __future__ import annotations

from dataclasses import dataclass
import torch.nn.functional as F

from dwa_core.approaches import register
from dwa_core.approaches.base import Approach
from dwa_core.approaches.shared import fisher_combine_param, fisher_form_param, fisher_mode_param
from dwa_core.fields import Bounds, param, validate
from dwa_core.functional.fisher import FisherCombine, FisherForm, FisherMode, combine_fisher, task_fisher
from dwa_core.functional.regularizers import ewc_penalty, old_params_of, parameters_of

@dataclass(frozen=True)
class EWCParams:
    """EWC's hyper-parameters (Kirkpatrick et al. 2017)."""

    lamb: float = param(5000.0, bounds=Bounds(0), source="HAT paper's comparison",
                        doc="weight λ of the quadratic penalty λ Σ_k ½ F_k (θ_k - θ*_k)²")
    fisher_form: FisherForm = fisher_form_param("Kirkpatrick et al. 2017 (switch: 'batch')")
    fisher_batch_size: int = param(20, bounds=Bounds(1),
                                   doc="the batch form's batches (the original code's 20); per-sample "
                                       "form: the vmap chunk")
    accumulate_gradients: bool = param(False, requires=(("fisher_form", "batch"),),
                                       doc="batch form only: never zero the gradients between batches "
                                           "(the DWA code's bug)")
    fisher_mode: FisherMode = fisher_mode_param(
        "the Fisher of the trained model, not of a dropout sample (switch: 'train')")
    fisher_combine: FisherCombine = fisher_combine_param(
        "Kirkpatrick et al. 2017: one penalty per task (switch: 'mean')")

    def __post_init__(self):
        validate(self, "approach_params.")


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

    def penalty_of(self, params: dict):
        """λ · Σ_k ½ F_k (θ_k - θ*_k)² of the parameters {name: tensor} (λ included, as IMM's
        `penalty_of`: what the Fisher pass adds to the CE); None before task 1."""
        if self.fisher is None:  # task 0: nothing to protect yet
            return None
        return self.params.lamb * ewc_penalty(params.items(), self.old_params, self.fisher)

    def penalty(self):
        """`penalty_of` the current weights (λ included); None before task 1."""
        return self.penalty_of(dict(self.model.named_parameters()))

    def loss(self, outputs, y, t, batch=None):
        ce = F.cross_entropy(outputs.logits, y)
        penalty = self.penalty()
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
