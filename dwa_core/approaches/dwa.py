"""DWA: Dynamic Weight Allocation (paper §3-4, Eq. 7). The maths lives in functional/dwa.py,
functional/dwa_masks.py, curriculum.py and anchors.py; this file wires it into the base loop.

Fidelity switches (each the paper's method by default; the `original-code` preset sets the original
code's behaviour, docs/original-code.md says what each one changes): triplet_form, plasticity_form,
sparsity_form, anchor_ranking ("last-batch"), fisher_form, fisher_accumulate, fisher_mode,
fisher_combine, stiff_uncapped, anchor_threshold
(None: the n lowest-ζ samples; 0.4: the original code's first n with ζ < 0.4)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dwa_core.anchors import AnchorRanking, anchor_rows, anchor_search, positive_anchor
from dwa_core.approaches import register
from dwa_core.approaches.base import Approach, Outputs
from dwa_core.approaches.shared import fisher_combine_param, fisher_form_param, fisher_mode_param
from dwa_core.curriculum import ComplexityCache, Curriculum, select
from dwa_core.fields import Bounds, param, validate
from dwa_core.functional.dwa import (
    TripletForm,
    anchored_embedding_loss,
    ideal_code,
    layer_scales,
    stiffness,
    total_loss,
)
from dwa_core.functional.dwa_masks import PlasticityForm, SparsityForm, plasticity_loss, sparsity_loss
from dwa_core.functional.fisher import (
    FisherCombine,
    FisherForm,
    FisherMode,
    combine_fisher,
    fisher_diagonal,
    iterate_batches,
    masked_per_sample_fisher,
)


def _weight(default, code_value, doc, source=""):
    return param(default, bounds=Bounds(0), code_value=code_value, doc=doc, source=source)


@dataclass(frozen=True)
class DWAParams:
    """DWA's hyper-parameters (paper §3-4); `code_value`: the original code's value (preset
    `original-code`), `original`: a fidelity switch."""

    lamb_triplet: float = _weight(20.0, 10, "λ1, weight of the embedding (triplet) loss (Eq. 7; the "
                                  "original code's default 10)", "DWA paper (λ1)")
    lamb_plasticity: float = _weight(0.1, 0.05, "λ2, weight of the plasticity loss (Eq. 5, 7; "
                                     "final-warm 0.05)", "DWA paper (λ2; the published run: 0.05)")
    lamb_sparsity: float = _weight(500.0, 500, "λ3, weight of the sparsity loss (Eq. 6, 7)",
                                   "DWA paper (λ3)")
    sparsity_mu: float = _weight(0.2, 0.2, "μ, the mask density the sparsity loss allows (Eq. 6)",
                                 "DWA paper (μ)")
    alpha: float = _weight(1.5, 1.0, "α, the triplet margin (Eq. 4; the original code's default 1.0)",
                           "DWA paper (α)")
    delta: float = _weight(1.0, 1.0, "δ, weight of the previous-task negative in the triplet loss")
    eta: float = param(10.0, doc="η, the plasticity scaling inside relu(η·H) (Eq. 5)")
    curriculum: Curriculum | None = param(
        Curriculum(), code_value="linear:100:0.2", source="DWA paper",
        doc="the curriculum on sample complexity ζ (§3.3): 'type:E[:start[:power]]', a dict, or None")
    anchor_threshold: float | None = param(
        None, original=0.4, code_value=0.4, source="DWA paper: the n lowest-ζ samples (switch: 0.4)",
        what="anchor samples: the first n with ζ < 0.4 instead of the n lowest-ζ samples",
        doc="None: the anchors come from the n lowest-ζ samples (paper); a number: the first n with ζ "
            "below it")
    anchor_samples: int = param(320, bounds=Bounds(1), code_value=320,
                                doc="n, samples of the anchor search (the original code: 10 batches of 32)")
    negative_candidates: int = param(5, bounds=Bounds(1),
                                     doc="K random orthogonal negative-anchor candidates")
    stiff: int | None = param(None, bounds=Bounds(1),
                              doc="epochs of the stiffness ramp σ = e / stiff (None: σ = 1)")
    use_anchor_first: bool = param(False, doc="embedding loss on task 0 too")
    scale_att_loss: bool = param(False,
                                 doc="scale each masked layer's plasticity term by κ_j = 0.2 + j·0.8/L")
    use_task_loss: bool = param(False,
                                doc="add Σ(1-ζ)·mean (E - I_t)² to the embedding loss (intended blocks)")
    fisher_batch_size: int = param(20, bounds=Bounds(1), doc="the batch-form Fisher's batches")
    fisher_form: FisherForm = fisher_form_param(
        "DWA paper (EWC's Fisher; switch: 'batch')",
        "DWA's Fisher = |B|·(mean gradient of a batch of 20)², not the mean of per-sample squared "
        "gradients")
    freeze_context: bool = param(
        False, doc="ablation (not the paper's method): after task 0 the context processor, which computes "
                   "the embedding, no longer trains, so an earlier task's masks' inputs stay put")
    fisher_mode: FisherMode = fisher_mode_param(
        "as EWC's (switch: 'train')", "the Fisher pass runs in train mode (σ of the last epoch)")
    fisher_combine: FisherCombine = fisher_combine_param(
        "EWC's sum, which the DWA paper follows (switch: 'mean')",
        "the tasks' Fisher diagonals are averaged, (F_t + t·F)/(t + 1): each old task's weight shrinks "
        "as 1/(t+1)")
    triplet_form: TripletForm = param(
        "paper", original="original-code",
        what="triplet on Frobenius norms of the whole batch, unsquared, divided by 1 + δ, summed over it",
        doc="the embedding loss (Eq. 4): 'paper', or the original code's batch-Frobenius form")
    plasticity_form: PlasticityForm = param(
        "paper", original="original-code",
        what="mean of |H|·F over batch and weights, no η and no positive part (Eq. 5: Σ F·relu(ηH))",
        doc="the plasticity loss (Eq. 5): 'paper', or the original code's mean |H|·F without η")
    sparsity_form: SparsityForm = param(
        "paper", original="original-code",
        what="penalises mean(1 - |H|) above μ, pushing masks to be dense (Eq. 6 asks for sparse ones)",
        doc="the sparsity loss (Eq. 6): 'paper', the original code's 'original-code', or 'binary'")
    anchor_ranking: AnchorRanking = param(
        "paper", original="last-batch", what="ranks negative-anchor candidates by the CE of the last anchor "
                                             "batch only",
        doc="how negative-anchor candidates are ranked: 'paper', or the original code's 'last-batch'")
    fisher_accumulate: bool = param(
        False, original=True, requires=(("fisher_form", "batch"),
                                        ), source="DWA paper: the standard diagonal Fisher",
        what="the Fisher's gradients are never zeroed: each batch adds the square of a running sum",
        doc="True: the batch-form Fisher's gradients are never zeroed (the original code's bug)")
    stiff_uncapped: bool = param(False, original=True,
                                 what="the stiffness ramp σ = e / stiff keeps growing past 1",
                                 doc="True: σ keeps growing past 1 (the original code)")

    def __post_init__(self):
        validate(self, "approach_params.")


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
        # The latest epoch begun (before_epoch's argument): σ of the Fisher pass in after_task, which
        # has no Batch to read the epoch from (only fisher_mode="train" uses it; eval mode has σ = 1).
        # It stays on self on purpose: handing it over as an argument would change `after_task`'s
        # signature in the base, in every approach that overrides it (EWC, IMM, LwF/LFL, SGD-restart,
        # HAT), in PathNet's `fit` and in the tests that call it, for DWA's need alone; like `current`
        # (this epoch's anchors), it is DWA's own per-task state.
        self.last_epoch = 0
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
        self.fisher = combine_fisher(self.fisher, self.task_fisher(t, task), t, p.fisher_combine)
        self.current = None
        self._share_fisher()

    def task_fisher(self, t, task) -> dict:
        """{masked weight name: F} of task t's training set under DWA's criterion without a batch
        (Eq. 7 less the embedding term). Per-sample: batched (masked_per_sample_fisher; the mask terms
        have no gradient in the masked weights, so it differentiates the CE alone); batch form: the
        original code's |B|·ḡ_B² over batches of fisher_batch_size."""
        p, x, y = self.params, task.train.x, task.train.y
        train_mode = p.fisher_mode == "train"
        if p.fisher_form == "per-sample":
            return masked_per_sample_fisher(self.model, iterate_batches(x, y, self.train_cfg.batch_size), t,
                                            train_mode=train_mode)
        new = fisher_diagonal(self.model, iterate_batches(x, y, p.fisher_batch_size),
                              lambda xb, yb: self.loss(self.forward(xb, t), yb, t),
                              accumulate_gradients=p.fisher_accumulate,
                              nominal_batch_size=p.fisher_batch_size if p.fisher_accumulate else None,
                              train_mode=train_mode)
        return {k: new[k] for k in self.model.masked_weight_names()}

    def _share_fisher(self) -> None:
        """Hand the Fisher to the network, whose fused masked layers compute the plasticity term."""
        if hasattr(self.model, "plasticity_weights"):
            self.model.plasticity_weights = self.fisher

    def trainable_parameters(self):
        """Every parameter, less the context processor's once task 0 is learned with freeze_context."""
        frozen = self.params.freeze_context and len(self.anchors) >= 1 and hasattr(self.model, "processor")
        skip = {id(q) for q in self.model.processor.parameters()} if frozen else set()
        return [q for q in super().trainable_parameters() if id(q) not in skip]

    def extra_state(self):
        return {"fisher": self.fisher, "anchors": list(self.anchors)}

    def load_extra_state(self, state):
        self.fisher, self.anchors = state["fisher"], list(state["anchors"])
        self._share_fisher()
