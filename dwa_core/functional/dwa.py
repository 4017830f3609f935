"""DWA loss terms on the embedding and their composition (docs/original-code.md#loss-terms; paper Eqs.
3-4, 7)."""

from __future__ import annotations

from typing import Literal, get_args

import torch

TripletForm = Literal["paper", "original-code"]
TRIPLET_FORMS = get_args(TripletForm)


def triplet_paper(e: torch.Tensor, p: torch.Tensor, n: torch.Tensor, alpha: float) -> torch.Tensor:
    """(B,) paper Eq. 3: [||E_b - P||² - ||E_b - N||² + α]₊ per sample."""
    return torch.relu((e - p).pow(2).sum(1) - (e - n).pow(2).sum(1) + alpha)


def embedding_loss(e, zeta, p, n, n_prev=None, *, alpha=1.5, delta=1.0, form="paper") -> torch.Tensor:
    """Embedding loss weighted by (1 - ζ_b).
    paper (Eq. 4): mean_b (1-ζ_b)(L_trip(E_b,P,N) + δ L_trip(E_b,P,N_T)); the paper writes one sample,
      we average over the batch so the term does not scale with the batch size.
    original-code: Frobenius distances of the whole batch matrix, unsquared,
      ℓ = ([d_P - d_N + α]₊ + δ[d_P - d_T + α]₊)/(1+δ) (no δ part without N_T),
      L = Σ_b (1-ζ_b)·ℓ."""
    if form not in TRIPLET_FORMS:
        raise ValueError(f"triplet form: must be one of {', '.join(TRIPLET_FORMS)}, got {form!r}")
    w = 1 - zeta
    if form == "paper":
        per = triplet_paper(e, p, n, alpha)
        if n_prev is not None:
            per = per + delta * triplet_paper(e, p, n_prev, alpha)
        return (w * per).mean()
    d_p, d_n = torch.linalg.norm(e - p), torch.linalg.norm(e - n)
    ell = torch.relu(d_p - d_n + alpha)
    if n_prev is not None:
        ell = (ell + delta * torch.relu(d_p - torch.linalg.norm(e - n_prev) + alpha)) / (1 + delta)
    return (w * ell).sum()


def ideal_code(t: int, n_tasks: int, d: int, like: torch.Tensor) -> torch.Tensor:
    """I_t: block t of width d // T set to 1 (the intended code; the original code's block bounds were
    wrong)."""
    width = d // n_tasks
    code = like.new_zeros(d)
    code[t * width:(t + 1) * width] = 1
    return code


def task_code_loss(e: torch.Tensor, zeta: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """use_task_loss (docs/original-code.md#loss-terms): Σ_b (1-ζ_b) mean_k (E_bk - I_k)²."""
    return ((1 - zeta) * (e - code).pow(2).mean(1)).sum()


def anchored_embedding_loss(e, zeta, anchors: dict, *, alpha: float, delta: float, form: TripletForm,
                            task_code: torch.Tensor | None = None) -> torch.Tensor:
    """L_emb (Eq. 4) of embeddings e (B, d) against this epoch's anchors {positive, negative,
    previous (None at t = 0)}; with `task_code` (use_task_loss, see `ideal_code`) plus its
    task_code_loss."""
    loss = embedding_loss(e, zeta, anchors["positive"], anchors["negative"], anchors["previous"],
                          alpha=alpha, delta=delta, form=form)
    return loss if task_code is None else loss + task_code_loss(e, zeta, task_code)


def stiffness(epoch: int, stiff: int | None, uncapped: bool = False) -> float:
    """σ = e / stiff, capped at 1 (paper intent: a ramp); uncapped reproduces the original code
    (docs/original-code.md#loss-terms
    item 5)."""
    if stiff is None:
        return 1.0
    s = epoch / stiff
    return s if uncapped else min(1.0, s)


def layer_scales(n_layers: int) -> list[float]:
    """κ_j = 0.2 + 0.8·j / L for masked layer j of L (`scale_att_loss`: deeper layers weigh more)."""
    return [0.2 + j * 0.8 / n_layers for j in range(n_layers)]


def total_loss(ce, *, sigma=1.0, emb=None, plasticity=None, sparsity=None,
               lamb_triplet=20.0, lamb_plasticity=0.1, lamb_sparsity=500.0) -> torch.Tensor:
    """Paper Eq. 7: L = CE + σλ1 L_emb + σλ2 L_pl + σλ3 R; missing terms (None) are skipped."""
    total = ce
    for term, lamb in ((emb, lamb_triplet), (plasticity, lamb_plasticity), (sparsity, lamb_sparsity)):
        if term is not None:
            total = total + sigma * lamb * term
    return total
