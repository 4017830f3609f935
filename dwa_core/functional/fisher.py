"""Diagonal empirical Fisher information (docs/original-code.md#ewc, #fisher) and how the Fisher of
several tasks is combined (a sum, the papers; a running mean, the original code).

The model is put in eval mode for the Fisher by default (callers pass train_mode=False: dropout off,
so the estimate is deterministic); the original code kept train mode (dropout active).

Two forms:
- per-sample (Kirkpatrick et al. 2017, the papers' EWC; DWA's Eq. 5 weighs its plasticity term by
  it): F_k = 1/N sum_i (d loss_i / d theta_k)^2, the mean of the squared gradient of each sample's
  loss. It is computed in chunks, never with one backward per sample:
  * EWC and IMM (`per_sample_fisher`): by layer hooks or torch.func (vmap over per-sample
    gradients);
  * DWA (`masked_per_sample_fisher`, the masked weights only): its criterion's mask terms (Eq. 5-7)
    depend on the masks H alone, not on W, so sample i's gradient of a masked weight is that of its
    CE: H_i ⊙ (delta_i a_i^T) (dense; for a convolution delta_i times the unfolded input). One
    summed-CE backward per chunk gives every delta_i; the squares are summed without storing a
    (B, out, in) tensor for the rank-1 masks (a fused C kernel on float32 CPU);
- batch (the original code, docs/original-code.md#ewc, #fisher):
  F_k = 1/N sum_B |B| (d L_B / d theta_k)^2, the squared mean gradient of each mini-batch weighted
  by its size. By Jensen's inequality it is at most the per-sample form, and far smaller once a
  task is fit (gradients of different samples cancel in the batch mean)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from dwa_core.models import kernels
from dwa_core.models.masked import MaskedConv2d, RankOneMask, factors_aligned


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


def per_sample_fisher(model: nn.Module, batches: Iterable[tuple], t, *,
                      penalty: Callable[[dict], torch.Tensor | None] | None = None,
                      train_mode: bool = True) -> dict[str, torch.Tensor]:
    """{name: F} with F = mean over samples of the squared gradient of one sample's criterion,
    CE(model(x_i, t), y_i) + penalty(params) (penalty: a function of {name: tensor} returning a
    scalar or None, e.g. EWC's or IMM's weighted regulariser; or None). `batches`: (B, ...)
    inputs and (B,) labels. train_mode keeps dropout active, with its own mask per sample (as B
    separate passes would draw). Frozen parameters get zeros.

    Networks built of Linear / Conv2d layers (the MLP, AlexNet, their heads) take one backward per
    batch: a sample's weight gradient is delta_i a_i^T, so sum_i of its square is (delta^2)^T a^2
    for a dense layer (a batched product over positions for a convolution), never materialised
    per sample. Other networks go through torch.func (vmap over per-sample gradients, B x
    n_parameters floats per batch)."""
    named = dict(model.named_parameters())
    was_training = model.training
    model.train(train_mode)
    try:
        if _plain_layers(model) is not None:
            squares, grad_sums, n = _squares_by_hooks(model, batches, t)
        else:
            squares, grad_sums, n = _squares_by_vmap(model, batches, t)
        if penalty is not None:  # grad_i = g_i + c for every sample, c = d penalty / d theta
            squares = _with_penalty(named, squares, grad_sums, n, penalty)
    finally:
        model.train(was_training)
    return {name: (f / max(n, 1) if named[name].requires_grad else torch.zeros_like(f))
            for name, f in squares.items()}


def _plain_layers(model: nn.Module) -> dict | None:
    """{module name: module} when every module that owns parameters is a Linear or an ungrouped
    Conv2d, else None."""
    layers = {name: m for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))}
    plain = all(type(m) is nn.Linear or (type(m) is nn.Conv2d and m.groups == 1) for m in layers.values())
    return layers if plain else None


def _squares_by_hooks(model: nn.Module, batches, t):
    """(sum_i g_i^2, sum_i g_i, N) per parameter from one summed-loss backward per batch."""
    layers = _plain_layers(model)
    squares = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    grad_sums = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    seen: dict = {}  # module -> (input, output) of this batch

    def keep(module, inputs, output):
        output.retain_grad()
        seen[module] = (inputs[0].detach(), output)

    handles = [m.register_forward_hook(keep) for m in layers.values()]
    n = 0
    try:
        for x, y in batches:
            seen.clear()
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x, t), y, reduction="sum").backward()
            for name, m in layers.items():
                if m not in seen:  # another task's head: no gradient
                    continue
                a, out = seen[m]
                _add_layer_squares(m, a, out.grad, squares, name)
            for name, p in model.named_parameters():
                if p.grad is not None:
                    grad_sums[name] += p.grad
            n += len(x)
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
    return squares, grad_sums, n


def _add_layer_squares(m: nn.Module, a: torch.Tensor, delta: torch.Tensor, squares: dict, name: str) -> None:
    """Add sum_i (per-sample gradient)^2 of layer m's weight and bias; a: its input, delta: the
    gradient of the summed loss with respect to its output (row i = sample i's own gradient)."""
    if type(m) is nn.Linear:
        a, delta = a.reshape(a.shape[0], -1, a.shape[-1]), delta.reshape(delta.shape[0], -1, delta.shape[-1])
        if a.shape[1] == 1:  # (B, in), (B, out): sum_i (delta_i a_i^T)^2 = (delta^2)^T a^2
            squares[f"{name}.weight"] += delta[:, 0].pow(2).T @ a[:, 0].pow(2)
        else:  # (B, P, in): per-sample sum over positions first
            squares[f"{name}.weight"] += torch.bmm(delta.transpose(1, 2), a).pow(2).sum(0)
        bias_grads = delta.sum(1)  # (B, out)
    else:  # Conv2d: per-sample gradient = delta_i (out, P) @ unfold(a_i)^T (P, in*k*k)
        cols = F.unfold(a, m.kernel_size, m.dilation, m.padding, m.stride)  # (B, in*k*k, P)
        delta = delta.flatten(2)  # (B, out, P)
        squares[f"{name}.weight"] += torch.bmm(delta, cols.transpose(1, 2)).pow(2).sum(0).view_as(m.weight)
        bias_grads = delta.sum(2)
    if m.bias is not None:
        squares[f"{name}.bias"] += bias_grads.pow(2).sum(0)


def _squares_by_vmap(model: nn.Module, batches, t):
    """(sum_i g_i^2, sum_i g_i, N) per parameter through torch.func per-sample gradients."""
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def sample_loss(p, x, y):  # x: one sample, y: () label
        return F.cross_entropy(functional_call(model, (p, buffers), (x.unsqueeze(0), t)), y.unsqueeze(0))

    sample_grads = vmap(grad(sample_loss), in_dims=(None, 0, 0), randomness="different")
    squares = {name: torch.zeros_like(p) for name, p in params.items()}
    grad_sums = {name: torch.zeros_like(p) for name, p in params.items()}
    n = 0
    for x, y in batches:
        for name, g in sample_grads(params, x, y).items():  # {name: (B, *shape)}
            squares[name] += g.pow(2).sum(0)
            grad_sums[name] += g.sum(0)
        n += len(x)
    return squares, grad_sums, n


def _with_penalty(named: dict, squares: dict, grad_sums: dict, n: int, penalty: Callable) -> dict:
    """sum_i (g_i + c)^2 = sum_i g_i^2 + 2 c sum_i g_i + n c^2, c the penalty's gradient."""
    value = penalty(named)
    if value is None:
        return squares
    names = [k for k, p in named.items() if p.requires_grad]
    grads = torch.autograd.grad(value, [named[k] for k in names], allow_unused=True)
    out = dict(squares)
    for k, c in zip(names, grads):
        if c is not None:
            out[k] = squares[k] + 2 * c * grad_sums[k] + n * c.pow(2)
    return out


def masked_per_sample_fisher(model: nn.Module, batches: Iterable[tuple], t, *,
                             train_mode: bool = False) -> dict[str, torch.Tensor]:
    """{name: F} for each masked weight of a DWA network (`model.masked_weight_names()`, in layer
    order), F shaped like the weight: the per-sample Fisher (Kirkpatrick et al. 2017) under DWA's
    criterion, which the DWA paper's Eq. 5 uses. `batches`: (B, ...) inputs and (B,) labels; any
    chunking gives the same F up to float rounding.

    DWA's loss without a batch is CE + σλ2 plasticity(H, F) + λ3 sparsity(H) (Eq. 7): the mask terms
    depend on the masks H, not on the masked weights W, so sample i's gradient of W is that of
    CE_i alone, g_i = H_i ⊙ (delta_i a_i^T), with delta_i row i of the summed CE's gradient at the
    layer's output and a_i its input (conv: delta_i (out, P) @ unfold(a_i)^T (P, in·k·k)). One
    summed-CE backward per batch; a forward hook replaces each masked layer's backward by one that
    adds sum_i g_i^2 into F and returns the layer's input gradient (none for the lowest masked
    layer), so the layer's own dW, du, dv are never computed. Rank-1 masks with aligned factors on
    float32 CPU tensors go through the fused C kernel (kernels.fisher); other masks are
    materialised a few samples at a time. No parameter's .grad is touched. train_mode keeps
    dropout active (each sample its own mask). Raises ValueError if a masked weight is frozen."""
    names = model.masked_weight_names()
    layers = {model.get_submodule(name.rpartition(".")[0]): name for name in names}
    if any(not layer.weight.requires_grad for layer in layers):
        raise ValueError("masked_per_sample_fisher: every masked weight must require grad")
    sums = {name: torch.zeros_like(layer.weight) for layer, name in layers.items()}
    lowest = next(iter(layers))  # its input gradient is not needed

    def tap(layer, inputs, output):
        fisher_of = partial(_layer_fisher, layer, inputs[0].detach(), inputs[1], sums[layers[layer]],
                            layer is not lowest)
        return _FisherTap.apply(inputs[0], layer.weight, output.detach(), fisher_of)

    was_training, plasticity = model.training, getattr(model, "plasticity_weights", None)
    model.train(train_mode)
    if plasticity is not None:  # the pass needs CE alone: no fused plasticity term (same outputs)
        model.plasticity_weights = None
    handles = [layer.register_forward_hook(tap) for layer in layers]
    n = 0
    try:
        with torch.enable_grad():
            for x, y in batches:
                loss = F.cross_entropy(model(x, t), y, reduction="sum")
                torch.autograd.backward(loss, inputs=[layer.weight for layer in layers])
                n += len(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
        if plasticity is not None:
            model.plasticity_weights = plasticity
    return {name: f / max(n, 1) for name, f in sums.items()}


class _FisherTap(torch.autograd.Function):
    """The identity on a masked layer's output y (computed by the layer, detached); its backward is
    `fisher_of(gy)`, which adds the layer's sum_i g_i^2 into the Fisher and returns dx or None. The
    weight is an input only so that the output requires grad; it gets no gradient."""

    @staticmethod
    def forward(ctx, x, weight, y, fisher_of):
        ctx.fisher_of = fisher_of
        return y.clone()

    @staticmethod
    def backward(ctx, gy):
        return ctx.fisher_of(gy.contiguous()), None, None, None


def _layer_fisher(layer: nn.Module, x: torch.Tensor, mask, fisher_sum: torch.Tensor, need_dx: bool,
                  gy: torch.Tensor) -> torch.Tensor | None:
    """Adds sum_i (H_i ⊙ per-sample gradient of the unmasked weight)^2 into fisher_sum; returns the
    gradient of the layer's input x (B, ...) if need_dx. gy: the gradient of its output."""
    weight = layer.weight.detach()
    if isinstance(layer, MaskedConv2d):
        return _conv_fisher(weight, x, mask.materialise().detach(), gy, fisher_sum, need_dx)
    if isinstance(mask, RankOneMask) and factors_aligned(weight, mask):
        u, v = mask.u.detach().contiguous(), mask.v.detach().contiguous()
        if kernels.applies(x, weight, u, v, gy):
            x, weight = x.contiguous(), weight.contiguous()
            return kernels.fisher(x, weight, u, v, gy, mask.gate, fisher_sum, need_dx)
    dx = torch.empty_like(x) if need_dx else None
    for start in range(0, len(x), 8):  # 8 samples' (out, in) masks at a time
        rows = slice(start, start + 8)
        h = _mask_rows(mask, rows)  # (b, out, in)
        fisher_sum += (h * gy[rows, :, None] * x[rows, None, :]).pow(2).sum(0)
        if need_dx:
            dx[rows] = torch.bmm((weight * h).transpose(1, 2), gy[rows, :, None]).squeeze(-1)
    return dx


def _mask_rows(mask, rows: slice) -> torch.Tensor:
    """H of the samples `rows`, (b, *weight shape), detached."""
    if isinstance(mask, RankOneMask):
        return RankOneMask(mask.u[rows].detach(), mask.v[rows].detach(), mask.gate, mask.shape).materialise()
    return mask.h[rows].detach()


def _conv_fisher(weight, x, h, gy, fisher_sum, need_dx) -> torch.Tensor | None:
    """`_layer_fisher` of a MaskedConv2d (stride 1, no padding); h (B, out, in, k, k)."""
    k = weight.shape[-1]
    cols = F.unfold(x, k)  # (B, in·k·k, P)
    delta, h = gy.flatten(2), h.flatten(2)  # (B, out, P), (B, out, in·k·k)
    fisher_sum += (h * torch.bmm(delta, cols.transpose(1, 2))).pow(2).sum(0).view_as(fisher_sum)
    if not need_dx:
        return None
    w = weight.flatten(1) * h  # (B, out, in·k·k): each sample's W ⊙ H_i
    return F.fold(torch.bmm(w.transpose(1, 2), delta), x.shape[-2:], k)


FisherCombine = Literal["sum", "mean"]  # Σ_k F_k (the papers) or the original code's running mean
FisherForm = Literal["per-sample", "batch"]  # the mean of per-sample squared gradients, or |B|·ḡ_B²
FisherMode = Literal["eval", "train"]  # the model's mode in the Fisher pass (dropout off / on)


def task_fisher(approach, t: int, task, batch_size: int, form: FisherForm = "per-sample",
                accumulate: bool = False, mode: FisherMode = "eval") -> dict[str, torch.Tensor]:
    """Empirical Fisher of task t's training set under `approach`'s own criterion (CE of head t plus
    `approach.penalty_of(params)`, the penalty already weighted by its λ), for EWC and IMM-mode.
    {name: tensor shaped like the parameter}; `form`, `mode` and `accumulate` as in EWCParams."""
    batches = iterate_batches(task.train.x, task.train.y, batch_size)
    train_mode = mode == "train"
    if form == "per-sample":
        return per_sample_fisher(approach.model, batches, t, penalty=approach.penalty_of,
                                 train_mode=train_mode)
    return fisher_diagonal(
        approach.model, batches, lambda x, y: approach.loss(approach.forward(x, t), y, t),
        accumulate_gradients=accumulate, train_mode=train_mode)


def merge_fisher(old: dict | None, new: dict, t: int) -> dict[str, torch.Tensor]:
    """Running mean over tasks: F <- (F_t + t * F_prev) / (t + 1), t = task index (the original
    code's EWC, docs/original-code.md#ewc): each old task's weight shrinks as 1 / (t + 1)."""
    if old is None or t == 0:
        return {name: f.clone() for name, f in new.items()}
    return {name: (f + t * old[name]) / (t + 1) for name, f in new.items()}


def sum_fisher(old: dict | None, new: dict) -> dict[str, torch.Tensor]:
    """Running sum over tasks, F <- F_prev + F_t: one penalty per old task (Kirkpatrick et al.
    2017, Eq. 3 applied to each task; IMM-mode's merge weights)."""
    if old is None:
        return {name: f.clone() for name, f in new.items()}
    return {name: f + old[name] for name, f in new.items()}


def combine_fisher(old: dict | None, new: dict, t: int,
                   how: FisherCombine = "sum") -> dict[str, torch.Tensor]:
    """The Fisher of tasks 0..t from that of tasks 0..t-1 (`old`, None at t = 0) and task t's (`new`):
    "sum" (the papers: Σ_k F_k) or "mean" (the original code's running mean). Raises ValueError on
    another `how`."""
    if how == "sum":
        return sum_fisher(old, new)
    if how == "mean":
        return merge_fisher(old, new, t)
    raise ValueError(f"how must be 'sum' or 'mean', got {how!r}")
