"""HAT: Hard Attention to the Task (Serra et al. 2018; docs/original-code.md#hat).

Each gated layer has a task embedding e_t; its units are multiplied by a = sigmoid(s e_t), with s
annealed from 1/s_max to s_max within every epoch (s_max in evaluation). The loss adds c * R, a
penalty on units not used by earlier tasks; gradients of weights used by earlier tasks are scaled by
1 - min(a_post, a_pre) of the cumulative masks, and embedding gradients are compensated for s."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dwa_core.approaches import register
from dwa_core.approaches.base import Approach, Outputs
from dwa_core.fields import Bounds, param, validate
from dwa_core.functional.hat import (
    anneal_s,
    compensate_embedding_grad,
    cumulative_update,
    gradient_multiplier,
    mask_regularizer,
)
from dwa_core.observers import NO_OBSERVER


@contextmanager
def flush_denormals():
    """At large s many masks are ~exp(-s|e|), float32 denormals that make CPU matmuls several times
    slower; flushing them to zero changes no value above 1e-38. The default (off) is restored."""
    flushed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)


@dataclass(frozen=True)
class HATParams:
    """HAT's hyper-parameters (HAT paper §2-3)."""

    c: float = param(0.75, bounds=Bounds(0), source="HAT paper",
                     doc="regularisation strength c of the mask penalty R (Eq. 5; `lamb` in the original "
                         "code)")
    s_max: float = param(400.0, bounds=Bounds(1), source="HAT paper",
                         doc="largest gate scale s_max: s is annealed from 1/s_max to s_max within an epoch "
                             "(Eq. 3)")
    thres_cosh: float = param(50.0, bounds=Bounds(0, low_open=True), source="HAT paper / original",
                              doc="clamp of s·e inside cosh in the embedding-gradient compensation (Eq. 4)")
    thres_emb: float = param(6.0, bounds=Bounds(0, low_open=True), source="HAT paper / original",
                             doc="embeddings are clamped to [-thres_emb, thres_emb] after each step")

    def __post_init__(self):
        validate(self, "approach_params.")


@dataclass(frozen=True)
class HATOutputs(Outputs):
    """HAT's forward: the logits, the gate scale s it used and its unit masks {layer: (units,)},
    which the regulariser (loss, Eq. 5) and the compensation (after_backward, Eq. 4) read."""

    s: float
    masks: dict


@register("hat")
class HAT(Approach):
    """Task-conditioned unit masks protect the units used by earlier tasks."""

    Params = HATParams
    family = "hat"
    clip_grad = 10000.0

    def __init__(self, model, train, params=None, *, seed=0):
        super().__init__(model, train, params, seed=seed)
        self.cumulative: dict | None = None  # layer -> a^{<t}, max over the masks of earlier tasks
        self.multipliers: dict = {}  # parameter name -> 1 - view(a^{<t})

    def fit(self, t, task, earlier=(), observer=NO_OBSERVER):
        with flush_denormals():
            return super().fit(t, task, earlier, observer)

    def test(self, u, task, split="test"):
        with flush_denormals():
            return super().test(u, task, split)

    def task_agnostic(self, u, task, seen, split="test"):
        with flush_denormals():
            return super().task_agnostic(u, task, seen, split)

    def gate_scale(self, batch=None) -> float:
        """s of this batch: annealed with its progress while training (Eq. 3), else s_max."""
        if self.model.training and batch is not None:
            return anneal_s(batch.progress, self.params.s_max)
        return self.params.s_max

    def forward(self, x, t, batch=None):
        s = self.gate_scale(batch)
        logits, masks = self.model(x, t, s=s, return_masks=True)
        return HATOutputs(logits, s, masks)

    def regularizer(self, masks: dict):
        """R of this pass's unit masks against a^{<t} (Eq. 5)."""
        previous = None if self.cumulative is None else [self.cumulative[k] for k in masks]
        return mask_regularizer(masks.values(), previous)

    def loss(self, outputs, y, t, batch=None):
        return F.cross_entropy(outputs.logits, y) + self.params.c * self.regularizer(outputs.masks)

    @torch.no_grad()
    def after_backward(self, t, outputs):
        p = self.params
        embeddings = {id(e) for e in self.model.emb.parameters()}  # the task embeddings e_t
        for name, weight in self.model.named_parameters():
            if weight.grad is None:
                continue
            if name in self.multipliers:  # empty before the first task is done
                weight.grad.mul_(self.multipliers[name])
            elif id(weight) in embeddings:
                weight.grad.copy_(compensate_embedding_grad(weight.grad, weight, outputs.s, p.s_max,
                                                            p.thres_cosh))

    @torch.no_grad()
    def after_step(self, t):
        for e in self.model.emb.values():
            e.weight.clamp_(-self.params.thres_emb, self.params.thres_emb)

    @torch.no_grad()
    def after_task(self, t, task):
        self.cumulative = cumulative_update(self.cumulative, self.model.masks(t, self.params.s_max))
        self._update_multipliers()

    def _update_multipliers(self):
        views = self.model.views(self.cumulative)
        self.multipliers = {k: gradient_multiplier(v) for k, v in views.items()}

    def extra_state(self):
        return {"cumulative": self.cumulative or {}}

    def load_extra_state(self, state):
        self.cumulative = dict(state["cumulative"]) or None
        if self.cumulative is not None:
            self._update_multipliers()
        else:
            self.multipliers = {}
