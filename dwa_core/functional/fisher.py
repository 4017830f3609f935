"""Diagonal empirical Fisher information and its running-mean merge.

Two forms:
- per-sample (Kirkpatrick et al. 2017, the papers' EWC): F_k = 1/N sum_i (d loss_i / d theta_k)^2,
  the mean of the squared gradient of each sample's loss, computed in chunks with torch.func
  (vmap over per-sample gradients), never one backward per sample;
- batch (the original code, seed_spec §6.2, §5.9): F_k = 1/N sum_B |B| (d L_B / d theta_k)^2, the
  squared mean gradient of each mini-batch weighted by its size. By Jensen's inequality it is at
  most the per-sample form, and far smaller once a task is fit (gradients of different samples
  cancel in the batch mean)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap


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
    (seed_spec §11 #19). nominal_batch_size weighs every batch by that number, as the seed did even
    for the last partial batch; None weighs each by its true size. train_mode (seed: True) keeps
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


def per_sample_fisher(model: nn.Module, batches: Iterable[tuple], t, *,
                      penalty: Callable[[dict], torch.Tensor] | None = None,
                      train_mode: bool = True) -> dict[str, torch.Tensor]:
    """{name: F} with F = mean over samples of the squared gradient of one sample's criterion,
    CE(model(x_i, t), y_i) + penalty(params) (penalty: a function of {name: tensor} returning a
    scalar or None, e.g. EWC's or IMM's weighted regulariser; or None). Each batch of `batches` ((B, ...) inputs, (B,) labels) is one
    vmap chunk: memory B x n_parameters floats. train_mode keeps dropout active, with its own
    mask per sample (as B separate passes would draw). Frozen parameters get zeros."""
    named = dict(model.named_parameters())
    params = {name: p.detach() for name, p in named.items()}
    buffers = dict(model.named_buffers())

    def sample_loss(p, x, y):  # x: one sample (C, H, W), y: () label
        logits = functional_call(model, (p, buffers), (x.unsqueeze(0), t))
        loss = F.cross_entropy(logits, y.unsqueeze(0))
        extra = None if penalty is None else penalty(p)
        return loss if extra is None else loss + extra

    sample_grads = vmap(grad(sample_loss), in_dims=(None, 0, 0), randomness="different")
    fisher = {name: torch.zeros_like(p) for name, p in params.items()}
    was_training = model.training
    model.train(train_mode)
    n = 0
    try:
        for x, y in batches:
            grads = sample_grads(params, x, y)  # {name: (B, *shape)}
            for name, g in grads.items():
                fisher[name] += g.pow(2).sum(0)
            n += len(x)
    finally:
        model.train(was_training)
    return {name: (f / max(n, 1) if named[name].requires_grad else torch.zeros_like(f))
            for name, f in fisher.items()}


def merge_fisher(old: dict | None, new: dict, t: int) -> dict[str, torch.Tensor]:
    """Running mean over tasks: F <- (F_t + t * F_prev) / (t + 1) (seed_spec §6.2); t = task index."""
    if old is None or t == 0:
        return {name: f.clone() for name, f in new.items()}
    return {name: (f + t * old[name]) / (t + 1) for name, f in new.items()}


def sum_fisher(old: dict | None, new: dict) -> dict[str, torch.Tensor]:
    """Running sum over tasks (IMM-mode's Fisher)."""
    if old is None:
        return {name: f.clone() for name, f in new.items()}
    return {name: f + old[name] for name, f in new.items()}
