"""Anchor search for the DWA embedding loss (docs/original-code.md#anchors; paper §3.3), under torch.no_grad.

P: centroid of the gated embeddings of the anchor set. N: among K random vectors orthogonal to P̂
(unit), the one with the highest CE on head t when it overrides the embedding of every sample.
N_T: the stored positive anchor of an earlier task with the highest such CE."""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F

AnchorRanking = Literal["paper", "last-batch"]  # "last-batch": the original code's ranking
RANKINGS = get_args(AnchorRanking)


def anchor_rows(zeta: torch.Tensor, n: int, threshold: float | None = None) -> torch.Tensor:
    """Paper: the n rows of lowest complexity. threshold (original code): the first n rows with ζ < threshold
    in stored order (falls back to the n lowest when none qualifies)."""
    if threshold is None:
        return zeta.argsort()[:n]
    rows = (zeta < threshold).nonzero().squeeze(1)[:n]
    return rows if len(rows) else zeta.argsort()[:n]


def _batches(x, y, batch_size):
    return [(x[s:s + batch_size], y[s:s + batch_size]) for s in range(0, len(x), batch_size)]


@torch.no_grad()
def positive_anchor(model, x, t, batch_size=32) -> torch.Tensor:
    """(d,) mean gated embedding over x (model in eval mode)."""
    total = None
    for xb, _ in _batches(x, x, batch_size):
        model(xb, t)
        s = model.state.embedding.sum(0)
        total = s if total is None else total + s
    return total / len(x)


@torch.no_grad()
def override_loss(model, x, y, t, v, batch_size=32, ranking="paper") -> torch.Tensor:
    """CE of head t with every embedding replaced by v: over the whole set (paper) or, as the original code,
    only the last batch (`last-batch`)."""
    batches = _batches(x, y, batch_size)
    if ranking == "last-batch":
        batches = batches[-1:]
    total, n = x.new_zeros(()), 0
    for xb, yb in batches:
        total = total + F.cross_entropy(model(xb, t, embedding=v), yb, reduction="sum")
        n += len(yb)
    return total / max(n, 1)


def orthogonal_candidates(p: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(k, d) unit vectors v - (v·P̂)P̂ with v ~ N(0, I); P̂ = P/|P| (the original code used the
    unnormalised P)."""
    v = torch.randn(k, p.numel(), generator=generator, dtype=p.dtype).to(p.device)
    unit = p / p.norm().clamp_min(1e-12)
    v = v - (v @ unit)[:, None] * unit
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)


@torch.no_grad()
def hardest(model, x, y, t, vectors, batch_size=32, ranking="paper") -> torch.Tensor:
    """The vector of `vectors` with the highest override CE."""
    losses = torch.stack([override_loss(model, x, y, t, v, batch_size, ranking) for v in vectors])
    return vectors[int(losses.argmax())]


@torch.no_grad()
def anchor_search(model, x, y, t, previous=(), *, candidates=5, batch_size=32, ranking="paper",
                  generator=None) -> dict:
    """{'positive', 'negative', 'previous' (None at t=0)} for the anchor set (x, y) of task t."""
    was_training = model.training
    model.eval()
    p = positive_anchor(model, x, t, batch_size)
    neg = hardest(model, x, y, t, orthogonal_candidates(p, candidates, generator), batch_size, ranking)
    prev = None
    if len(previous):
        prev = hardest(model, x, y, t, torch.stack(list(previous)), batch_size, ranking)
    model.train(was_training)
    return {"positive": p, "negative": neg, "previous": prev}
