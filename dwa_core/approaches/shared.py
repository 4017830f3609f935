"""What several approaches share, so that no approach imports a sibling: the declarations of the
Fisher fields (EWC, IMM-mode, DWA: one text, one default, one original-code value each) and the
frozen copy of the model that LwF and LFL distil from."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from dwa_core.approaches.base import Approach, Outputs
from dwa_core.fields import param


def fisher_form_param(source: str = "", what: str = ""):
    """`fisher_form`: per-sample (the papers) or the original code's batch form (a switch)."""
    return param("per-sample", original="batch", source=source,
                 what=what or "Fisher = |B|·(mean gradient of a batch of 20)²: ~15x smaller than "
                      "the per-sample one on digits",
                 doc="'per-sample': the mean of each training sample's squared gradient (the papers' "
                     "empirical Fisher); 'batch': |B|·(mean gradient of a batch)², the original code's")


def fisher_mode_param(source: str = "", what: str = ""):
    """`fisher_mode`: the model's mode in the Fisher pass (a switch)."""
    return param("eval", original="train", source=source,
                 what=what or "the Fisher is computed with dropout active: larger and different on "
                      "every call",
                 doc="the model's mode in the Fisher pass: 'eval' (dropout off, deterministic) or 'train' "
                     "(the original code's: dropout active, 12-15x the eval-mode Fisher on the default MLP)")


def fisher_combine_param(source: str = "", what: str = ""):
    """`fisher_combine`: how the tasks' Fisher diagonals combine (a switch)."""
    return param("sum", original="mean", source=source,
                 what=what or "the tasks' Fisher diagonals are averaged, (F_t + t·F)/(t + 1): each "
                      "old task's penalty shrinks as 1/(t+1)",
                 doc="'sum': Σ_k F_k, one penalty per task (Kirkpatrick et al. 2017); 'mean': the original "
                     "code's running mean (F_t + t·F)/(t + 1), each old task weighted 1/(t+1)")


@dataclass(frozen=True)
class FeatureOutputs(Outputs):
    """LwF's and LFL's forward: the logits, the batch's inputs x and the features h the heads read
    (B, units), from which `loss` compares the frozen old model's heads or features."""

    x: torch.Tensor
    features: torch.Tensor


def frozen_copy(model: nn.Module) -> nn.Module:
    """The reference model of lwf / lfl / ewc / imm: a deep copy, eval mode, no gradients."""
    old = copy.deepcopy(model).eval()
    for p in old.parameters():
        p.requires_grad_(False)
    return old


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
