"""DWA: Dynamic Weight Allocation (paper §3-4; seed_spec §5). The maths lives in functional/dwa.py,
functional/dwa_masks.py, curriculum.py and anchors.py; this file wires it into the base loop.

Fidelity switches (each "paper" by default; the `original-code` preset sets the seed's behaviour):
triplet_form §5.5.2, plasticity_form §5.5.3, sparsity_form §5.5.4, anchor_ranking §5.7 ("last-batch"),
fisher_accumulate §5.9, stiff_uncapped §5.5.5; anchor_threshold (None: the n lowest-ζ samples; 0.4:
the seed's first n with ζ < 0.4)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from dwa_core.anchors import RANKINGS, anchor_rows, anchor_search, positive_anchor
from dwa_core.approaches import register
from dwa_core.approaches.base import Approach
from dwa_core.config import check
from dwa_core.curriculum import Curriculum, complexity, select
from dwa_core.functional.dwa import (
    TRIPLET_FORMS,
    embedding_loss,
    ideal_code,
    stiffness,
    task_code_loss,
    total_loss,
)
from dwa_core.functional.dwa_masks import PLASTICITY_FORMS, SPARSITY_FORMS, plasticity_loss, sparsity_loss
from dwa_core.functional.fisher import fisher_diagonal, iterate_batches, merge_fisher


@dataclass(frozen=True)
class DWAParams:
    lamb_triplet: float = 20.0  # λ1 (paper; seed default 10)
    lamb_plasticity: float = 0.1  # λ2 (paper; final-warm 0.05)
    lamb_sparsity: float = 500.0  # λ3
    sparsity_mu: float = 0.2  # μ
    alpha: float = 1.5  # triplet margin (paper; seed default 1.0)
    delta: float = 1.0  # weight of the previous-task negative
    eta: float = 10.0  # plasticity scaling η (paper Eq. 5)
    curriculum: str | None = "linear:100:0.2"  # type:E[:start[:power]] or None
    anchor_threshold: float | None = None  # None: n lowest-ζ samples (paper); seed 0.4
    anchor_samples: int = 320  # n (seed: 10 batches of 32)
    negative_candidates: int = 5  # K random orthogonal candidates
    stiff: int | None = None  # ramp epochs σ = e/stiff
    use_anchor_first: bool = False  # embedding loss on task 0 too
    scale_att_loss: bool = False  # κ_j = 0.2 + j·0.8/(L) per masked layer
    use_task_loss: bool = False  # add Σ(1-ζ)·mean (E - I_t)² to L_emb (intended blocks, §5.5)
    fisher_batch_size: int = 20
    triplet_form: str = "paper"  # "original-code": batch Frobenius, (1+δ), summed
    plasticity_form: str = "paper"  # "original-code": mean |H|·F, no η
    sparsity_form: str = "paper"  # "original-code" | "binary"
    anchor_ranking: str = "paper"  # "last-batch": CE of the last batch only
    fisher_accumulate: bool = False  # True: gradients never zeroed (seed bug)
    stiff_uncapped: bool = False  # True: σ keeps growing past 1 (seed)
    schedule: Curriculum | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        for name, value, allowed in (("triplet_form", self.triplet_form, TRIPLET_FORMS),
                                     ("plasticity_form", self.plasticity_form, PLASTICITY_FORMS),
                                     ("sparsity_form", self.sparsity_form, SPARSITY_FORMS),
                                     ("anchor_ranking", self.anchor_ranking, RANKINGS)):
            check(value in allowed, f"approach_params.{name}", " | ".join(allowed), value)
        for name in ("lamb_triplet", "lamb_plasticity", "lamb_sparsity", "sparsity_mu", "alpha", "delta"):
            check(getattr(self, name) >= 0, f"approach_params.{name}", ">= 0", getattr(self, name))
        check(self.anchor_samples >= 1 and self.negative_candidates >= 1, "approach_params.anchor_samples",
              "anchor_samples and negative_candidates >= 1", (self.anchor_samples, self.negative_candidates))
        check(self.stiff is None or self.stiff >= 1, "approach_params.stiff", "None or >= 1", self.stiff)
        sched = None if self.curriculum in (None, "", "none") else Curriculum.parse(self.curriculum)
        object.__setattr__(self, "schedule", sched)


@register("dwa")
class DWA(Approach):
    """CE + σλ1 L_emb + σλ2 L_plasticity + σλ3 R (Eq. 7); task 0: CE + λ3 R unless use_anchor_first."""

    Params = DWAParams
    family = "dwa"
    clip_grad = 10000.0

    def __init__(self, model, train, params=None, *, seed=0):
        super().__init__(model, train, params, seed=seed)
        self.fisher: dict | None = None
        self.anchors: list[torch.Tensor] = []  # positive anchor of each finished task
        self.current: dict | None = None  # this epoch's {positive, negative, previous}
        self.epoch, self._split, self._fisher_mode, self._zeta = 0, None, False, {}

    # ---- complexity ----------------------------------------------------------------------------
    def zeta(self, x: torch.Tensor) -> torch.Tensor:
        """ζ of a split, cached per tensor; ζ ≡ 1 without a curriculum (§5.6)."""
        key = id(x)
        if key not in self._zeta or self._zeta[key][0] is not x:
            z = complexity(x) if self.params.schedule else torch.ones(len(x), device=x.device)
            self._zeta[key] = (x, z)
        return self._zeta[key][1]

    # ---- hooks ---------------------------------------------------------------------------------
    def before_task(self, t, task):
        self._zeta, self.current, self._train = {}, None, task.train

    def epoch_indices(self, t, epoch, n, device):
        p, train = self.params, self._train
        self.epoch = epoch
        z = self.zeta(train.x)
        if t >= 1 or p.use_anchor_first:
            rows = anchor_rows(z, p.anchor_samples, p.anchor_threshold)
            self.current = anchor_search(
                self.model, train.x[rows], train.y[rows], t, self.anchors, candidates=p.negative_candidates,
                batch_size=self.train_cfg.batch_size, ranking=p.anchor_ranking, generator=self.generator)
        return None if p.schedule is None else select(z, p.schedule.theta(epoch))

    def curriculum_done(self, epoch):
        return self.params.schedule is None or self.params.schedule.done(epoch)

    def train_epoch(self, t, epoch, train, head, optimizer):
        self._split = train
        super().train_epoch(t, epoch, train, head, optimizer)

    def evaluate(self, split, head):
        self._split = split
        return super().evaluate(split, head)

    def loss_terms(self, outputs, y, t) -> dict:
        """Each term of Eq. 7 on this batch: ce, embedding, plasticity, sparsity (None where inactive)
        and σ; `loss` combines them with λ1-λ3."""
        p, state = self.params, self.model.state
        if self._fisher_mode:  # §5.9: ζ := 1, so no embedding term
            zeta = torch.ones(len(y), device=y.device)
        else:
            zeta = self.zeta(self._split.x)[self.batch_index]
        terms = {"ce": F.cross_entropy(outputs, y), "embedding": None, "plasticity": None}
        if self.current is not None and not self._fisher_mode:
            c = self.current
            terms["embedding"] = embedding_loss(state.embedding, zeta, c["positive"], c["negative"],
                                                c["previous"], alpha=p.alpha, delta=p.delta,
                                                form=p.triplet_form)
            if p.use_task_loss:
                d = state.embedding.shape[1]
                code = ideal_code(t, self.model.n_tasks, d, zeta)
                terms["embedding"] = terms["embedding"] + task_code_loss(state.embedding, zeta, code)
        if self.fisher is not None:
            n = len(state.masks)
            scale = [0.2 + j * 0.8 / n for j in range(n)] if p.scale_att_loss else None
            terms["plasticity"] = plasticity_loss(state, self.fisher, p.plasticity_form, p.eta, scale)
        terms["sparsity"] = sparsity_loss(state, p.sparsity_mu, p.sparsity_form)
        sigma = stiffness(self.epoch, p.stiff, p.stiff_uncapped) if self.model.training else 1.0
        terms["sigma"] = 1.0 if t == 0 and not p.use_anchor_first else sigma  # task 0: CE + λ3 R
        terms["zeta_mean"] = zeta.mean()
        return terms

    def loss(self, outputs, y, t):
        p, terms = self.params, self.loss_terms(outputs, y, t)
        return total_loss(terms["ce"], sigma=terms["sigma"], emb=terms["embedding"],
                          plasticity=terms["plasticity"], sparsity=terms["sparsity"],
                          lamb_triplet=p.lamb_triplet, lamb_plasticity=p.lamb_plasticity,
                          lamb_sparsity=p.lamb_sparsity)

    def after_task(self, t, task):
        p = self.params
        # The stored anchor belongs to the restored best model (the seed kept the last epoch's).
        rows = anchor_rows(self.zeta(task.train.x), p.anchor_samples, p.anchor_threshold)
        self.model.eval()
        self.anchors.append(positive_anchor(self.model, task.train.x[rows], t, self.train_cfg.batch_size))
        self._fisher_mode = True
        try:
            batches = iterate_batches(task.train.x, task.train.y, p.fisher_batch_size)
            new = fisher_diagonal(self.model, batches,
                                  lambda x, y: self.loss(self.forward(x, t), y, t),
                                  accumulate_gradients=p.fisher_accumulate,
                                  nominal_batch_size=p.fisher_batch_size if p.fisher_accumulate else None)
        finally:
            self._fisher_mode = False
        names = set(self.model.masked_weight_names())
        self.fisher = merge_fisher(self.fisher, {k: v for k, v in new.items() if k in names}, t)
        self.current = None

    def extra_state(self):
        return {"fisher": self.fisher, "anchors": list(self.anchors)}

    def load_extra_state(self, state):
        self.fisher, self.anchors = state["fisher"], list(state["anchors"])
