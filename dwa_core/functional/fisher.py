"""Diagonal empirical Fisher information (docs/original-code.md#ewc, #fisher) and its running-mean merge.

F_k = 1/N * sum_batches |B| * (dL_B/dtheta_k)^2: the squared mini-batch gradient, weighted by the
batch size. EWC, IMM-mode and DWA's plasticity loss share this routine."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn


def iterate_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int = 20) -> Iterator[tuple]:
    """Consecutive (x, y) slices in order; the last one may be partial."""
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size], y[start:start + batch_size]


def fisher_diagonal(model: nn.Module, batches: Iterable[tuple], loss_fn: Callable[..., torch.Tensor], *,
                    accumulate_gradients: bool = False, nominal_batch_size: int | None = None,
                    train_mode: bool = True) -> dict[str, torch.Tensor]:
    """{name: F} for every parameter of `model`; `loss_fn(*batch)` is the criterion of one batch.

    accumulate_gradients=True reproduces the original DWA code, which never zeroed the gradients
    between batches, so each batch adds the square of the gradient summed over all batches so far
    (docs/original-code.md#fisher). nominal_batch_size weighs every batch by that number, as the original
    code did even
    for the last partial batch; None weighs each by its true size. train_mode (original code: True) keeps
    dropout active. Parameters without a gradient (frozen ones) get zeros."""
    named = list(model.named_parameters())
    fisher = {name: torch.zeros_like(p) for name, p in named}
    was_training = model.training
    model.train(train_mode)
    model.zero_grad(set_to_none=True)
    n = 0
    for batch in batches:
        size = len(batch[0])
        if not accumulate_gradients:
            model.zero_grad(set_to_none=True)
        loss_fn(*batch).backward()
        weight = nominal_batch_size if nominal_batch_size is not None else size
        for name, p in named:
            if p.grad is not None:
                fisher[name] += weight * p.grad.detach().pow(2)
        n += size
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {name: f / max(n, 1) for name, f in fisher.items()}


def merge_fisher(old: dict | None, new: dict, t: int) -> dict[str, torch.Tensor]:
    """Running mean over tasks: F <- (F_t + t * F_prev) / (t + 1) (docs/original-code.md#ewc); t = task
    index."""
    if old is None or t == 0:
        return {name: f.clone() for name, f in new.items()}
    return {name: (f + t * old[name]) / (t + 1) for name, f in new.items()}


def sum_fisher(old: dict | None, new: dict) -> dict[str, torch.Tensor]:
    """Running sum over tasks (IMM-mode's Fisher)."""
    if old is None:
        return {name: f.clone() for name, f in new.items()}
    return {name: f + old[name] for name, f in new.items()}
