"""DWA: Dynamic Weight Allocation (paper §3-4, Eq. 7). The maths lives in functional/dwa.py,
functional/dwa_masks.py, curriculum.py and anchors.py; this file wires it into the base loop.

Fidelity switches (each the paper's method by default; the `original-code` preset sets the original
code's behaviour, docs/original-code.md says what each one changes): triplet_form, plasticity_form,
sparsity_form, anchor_ranking ("last-batch"), fisher_form, fisher_accumulate, fisher_mode,
fisher_combine, stiff_uncapped, anchor_threshold
(None: the n lowest-ζ samples; 0.4: the original code's first n with ζ < 0.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from dwa_core.anchors import AnchorRanking, anchor_rows, anchor_search, positive_anchor
from dwa_core.approaches import register
from dwa_core.approaches.base import Approach, Outputs
from dwa_core.config import check, coerce_fields
from dwa_core.curriculum import ComplexityCache, Curriculum, select
from dwa_core.functional.dwa import (
    TripletForm,
    anchored_embedding_loss,
    ideal_code,
    layer_scales,
    stiffness,
    total_loss,
)
from dwa_core.functional.dwa_masks import PlasticityForm, SparsityForm, plasticity_loss, sparsity_loss
from dwa_core.functional.fisher import FisherCombine, combine_fisher, fisher_diagonal, iterate_batches


@dataclass(frozen=True)
class DWAParams:
    lamb_triplet: float = 20.0  # λ1 (paper; original code's default 10)
    lamb_plasticity: float = 0.1  # λ2 (paper; final-warm 0.05)
    lamb_sparsity: float = 500.0  # λ3
    sparsity_mu: float = 0.2  # μ
    alpha: float = 1.5  # triplet margin (paper; original code's default 1.0)
    delta: float = 1.0  # weight of the previous-task negative
    eta: float = 10.0  # plasticity scaling η (paper Eq. 5)
    curriculum: Curriculum | None = Curriculum()  # also "type:E[:start[:power]]", a dict, or None
    anchor_threshold: float | None = None  # None: n lowest-ζ samples (paper); original code 0.4
    anchor_samples: int = 320  # n (original code: 10 batches of 32)
    negative_candidates: int = 5  # K random orthogonal candidates
    stiff: int | None = None  # ramp epochs σ = e/stiff
    use_anchor_first: bool = False  # embedding loss on task 0 too
    scale_att_loss: bool = False  # κ_j = 0.2 + j·0.8/L per masked layer
    use_task_loss: bool = False  # add Σ(1-ζ)·mean (E - I_t)² to L_emb (intended blocks)
    fisher_batch_size: int = 20  # the batch form's batches
    # "per-sample": the mean of each training sample's squared gradient (the papers' empirical
    # Fisher, one backward per sample); "batch": |B|·(mean gradient of a batch)², the original code's.
    fisher_form: Literal["per-sample", "batch"] = "per-sample"
    # Ablation (not the paper's method): after task 0 the context processor, which computes the
    # embedding, no longer trains, so an earlier task's embeddings, and so its masks' inputs, stay put.
    freeze_context: bool = False
    # The model's mode in the Fisher pass: "eval" (deterministic; σ = 1), "train" (the original code's).
    fisher_mode: Literal["eval", "train"] = "eval"
    # How the tasks' Fisher diagonals combine: "sum" (Σ_k F_k, as in EWC, which the paper follows),
    # "mean" (the original code's running mean, each old task weighted 1/(t+1)).
    fisher_combine: FisherCombine = "sum"
    triplet_form: TripletForm = "paper"  # "original-code": batch Frobenius, (1+δ), summed
    plasticity_form: PlasticityForm = "paper"  # "original-code": mean |H|·F, no η
    sparsity_form: SparsityForm = "paper"  # "original-code" | "binary"
    anchor_ranking: AnchorRanking = "paper"  # "last-batch": CE of the last batch only
    fisher_accumulate: bool = False  # True: gradients never zeroed (original code's bug)
    stiff_uncapped: bool = False  # True: σ keeps growing past 1 (original code)

    def __post_init__(self):
        coerce_fields(self, "approach_params.")
        for name in ("lamb_triplet", "lamb_plasticity", "lamb_sparsity", "sparsity_mu", "alpha", "delta"):
            check(getattr(self, name) >= 0, f"approach_params.{name}", ">= 0", getattr(self, name))
        check(self.anchor_samples >= 1 and self.negative_candidates >= 1, "approach_params.anchor_samples",
              "anchor_samples and negative_candidates >= 1", (self.anchor_samples, self.negative_candidates))
        check(self.stiff is None or self.stiff >= 1, "approach_params.stiff", "None or >= 1", self.stiff)
        check(not self.fisher_accumulate or self.fisher_form == "batch", "approach_params.fisher_accumulate",
              "false unless fisher_form='batch'", self.fisher_accumulate)
        object.__setattr__(self, "curriculum", Curriculum.coerce(self.curriculum))


@dataclass(frozen=True)
class DWAOutputs(Outputs):
    """DWA's forward: the logits and the pass's DWAState (embeddings E (B, d) and the masks H_b of
    every masked layer, models/dwa.py), from which `loss` computes Eq. 7's terms."""

    state: object


@register("dwa")
class DWA(Approach):
    """CE + σλ1 L_emb + σλ2 L_plasticity + σλ3 R (Eq. 7); task 0: CE + λ3 R unless use_anchor_first."""

    Params = DWAParams
    family = "dwa"  # clip_grad: the base's 10000

    def __init__(self, model, train, params=None, *, seed=0):
        super().__init__(model, train, params, seed=seed)
        self.fisher: dict | None = None
        self.anchors: list[torch.Tensor] = []  # positive anchor of each finished task
        self.current: dict | None = None  # this epoch's anchors {positive, negative, previous}
        self.last_epoch = 0  # the latest epoch begun (before_epoch's argument): σ of the Fisher pass
        self.zeta = ComplexityCache(self.params.curriculum is not None)  # ζ per split (paper §3.3)

    # ---- hooks ---------------------------------------------------------------------------------
    def before_task(self, t, task):
        self.zeta, self.current = ComplexityCache(self.params.curriculum is not None), None

    def before_epoch(self, t, epoch, train):
        """The anchor search of this epoch (paper §3.3) on the n simplest training samples."""
        p, self.last_epoch = self.params, epoch
        if t >= 1 or p.use_anchor_first:
            rows = anchor_rows(self.zeta(train.x), p.anchor_samples, p.anchor_threshold)
            self.current = anchor_search(
                self.model, train.x[rows], train.y[rows], t, self.anchors, candidates=p.negative_candidates,
                batch_size=self.train_cfg.batch_size, ranking=p.anchor_ranking, generator=self.generator)

    def epoch_indices(self, t, epoch, train):
        schedule = self.params.curriculum
        return None if schedule is None else select(self.zeta(train.x), schedule.theta(epoch))

    def curriculum_done(self, epoch):
        return self.params.curriculum is None or self.params.curriculum.done(epoch)

    def forward(self, x, t, batch=None):
        logits = self.model(x, t)
        return DWAOutputs(logits, self.model.state)  # the state of this very pass

    def loss_terms(self, outputs: DWAOutputs, y, t, batch=None) -> dict:
        """Each term of Eq. 7 on this batch: ce, embedding, plasticity, sparsity (None where inactive),
        σ and mean ζ. Without a batch (the Fisher pass after a task) ζ := 1: no embedding term, and
        σ is that of the last epoch trained."""
        p, state = self.params, outputs.state
        zeta = torch.ones(len(y), device=y.device) if batch is None else self.zeta(batch.split.x)[batch.rows]
        terms = {"ce": F.cross_entropy(outputs.logits, y), "embedding": None, "plasticity": None}
        if self.current is not None and batch is not None:
            d = state.embedding.shape[1]
            code = ideal_code(t, self.model.n_tasks, d, zeta) if p.use_task_loss else None
            terms["embedding"] = anchored_embedding_loss(state.embedding, zeta, self.current, alpha=p.alpha,
                                                         delta=p.delta, form=p.triplet_form, task_code=code)
        if self.fisher is not None:
            scale = layer_scales(len(state.masks)) if p.scale_att_loss else None
            terms["plasticity"] = plasticity_loss(state, self.fisher, p.plasticity_form, p.eta, scale)
        terms["sparsity"] = sparsity_loss(state, p.sparsity_mu, p.sparsity_form)
        epoch = self.last_epoch if batch is None else batch.epoch
        sigma = stiffness(epoch, p.stiff, p.stiff_uncapped) if self.model.training else 1.0
        terms["sigma"] = 1.0 if t == 0 and not p.use_anchor_first else sigma  # task 0: CE + λ3 R
        terms["zeta_mean"] = zeta.mean()
        return terms

    def loss(self, outputs, y, t, batch=None):
        p, terms = self.params, self.loss_terms(outputs, y, t, batch)
        return total_loss(terms["ce"], sigma=terms["sigma"], emb=terms["embedding"],
                          plasticity=terms["plasticity"], sparsity=terms["sparsity"],
                          lamb_triplet=p.lamb_triplet, lamb_plasticity=p.lamb_plasticity,
                          lamb_sparsity=p.lamb_sparsity)

    def after_task(self, t, task):
        p = self.params
        # The stored anchor belongs to the restored best model (the original code kept the last epoch's).
        rows = anchor_rows(self.zeta(task.train.x), p.anchor_samples, p.anchor_threshold)
        self.model.eval()
        self.anchors.append(positive_anchor(self.model, task.train.x[rows], t, self.train_cfg.batch_size))
        size = 1 if p.fisher_form == "per-sample" else p.fisher_batch_size  # batches of 1: per-sample
        new = fisher_diagonal(self.model, iterate_batches(task.train.x, task.train.y, size),
                              lambda x, y: self.loss(self.forward(x, t), y, t),
                              accumulate_gradients=p.fisher_accumulate,
                              nominal_batch_size=p.fisher_batch_size if p.fisher_accumulate else None,
                              train_mode=p.fisher_mode == "train")
        names = set(self.model.masked_weight_names())
        self.fisher = combine_fisher(self.fisher, {k: v for k, v in new.items() if k in names}, t,
                                     p.fisher_combine)
        self.current = None

    def trainable_parameters(self):
        """Every parameter, less the context processor's once task 0 is learned with freeze_context."""
        frozen = self.params.freeze_context and len(self.anchors) >= 1 and hasattr(self.model, "processor")
        skip = {id(q) for q in self.model.processor.parameters()} if frozen else set()
        return [q for q in super().trainable_parameters() if id(q) not in skip]

    def extra_state(self):
        return {"fisher": self.fisher, "anchors": list(self.anchors)}

    def load_extra_state(self, state):
        self.fisher, self.anchors = state["fisher"], list(state["anchors"])
