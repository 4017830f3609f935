"""The rank-1 masked layer of DWA and its mask sums as PyTorch operators (`torch.library`).

    torch.ops.dwa_core.rank_one_linear(x, W, u, v, gate) -> (y, s)      y_b = (W ⊙ H_b) x_b, s_b = Σ|H_b|
    torch.ops.dwa_core.rank_one_mask_sum(u, v, w, gate, kind) -> S      S_b = Σ_i w_i φ(H_bi)

with H_b = gate(u_b v_bᵀ) (out x in), φ = |.| ("abs") or relu ("relu"), w (out, in) or None. Each
has a hand-written backward operator, a fake (meta) implementation for shapes, and registered
autograd, so autograd and `torch.compile` of a whole model see one operator per layer (no graph
break, no (B, out, in) tensor in the graph).

What computes them (`backend_name`), the first that applies:

    DWA_CORE_RANK_ONE=triton|compiled|chunked|kernel   forced, on any device (tests, benchmarks)
    DWA_CORE_RANK_ONE=none     the layers do not use the operators (benchmarks: the old CUDA path)
    triton     CUDA, float32, Triton importable: kernels/triton_rank_one.py
    kernel     CPU, float32, the C kernel built: kernels/rank_one.c
    chunked    anything else: kernels/formula.py evaluated a few samples at a time
    (compiled: kernels/formula.py under torch.compile; only when forced, see its docstring)

The masked layers call these operators on CUDA; on the CPU they keep their own autograd Functions
around the same C kernel (models/masked.py)."""

from __future__ import annotations

import os
from types import ModuleType

import torch
from torch import Tensor

from dwa_core.models import kernels
from dwa_core.models.kernels import formula

BACKENDS = ("triton", "compiled", "chunked", "kernel")


def triton_backend() -> ModuleType | None:
    """kernels/triton_rank_one.py, or None where Triton cannot be imported."""
    try:
        from dwa_core.models.kernels import triton_rank_one
    except ImportError:
        return None
    return triton_rank_one


def backend_name(*tensors: Tensor) -> str:
    """The name of what computes the operators on these tensors (see the module's docstring)."""
    forced = _forced()
    if forced not in (None, "none"):
        return forced
    float32 = all(t.dtype == torch.float32 for t in tensors)
    if float32 and all(t.is_cuda for t in tensors) and triton_backend() is not None:
        return "triton"
    if kernels.applies(*tensors):
        return "kernel"
    return "chunked"


def used_for(x: Tensor) -> bool:
    """Whether the masked layers route through these operators: on CUDA, or when a backend is
    forced; never with DWA_CORE_RANK_ONE=none (the layers' per-sample Functions, as before them)."""
    forced = _forced()
    return forced != "none" and (x.is_cuda or forced is not None)


def _forced() -> str | None:
    forced = os.environ.get("DWA_CORE_RANK_ONE") or None
    if forced is not None and forced not in (*BACKENDS, "none"):
        raise ValueError(f"DWA_CORE_RANK_ONE: must be one of {', '.join(BACKENDS)}, none; got {forced!r}")
    return forced


def _backend(*tensors: Tensor):
    name = backend_name(*tensors)
    if name == "triton":
        return triton_backend()
    return {"compiled": formula.compiled, "chunked": formula.chunked, "kernel": kernels}[name]


def _contiguous(*tensors):
    return [None if t is None else t.contiguous() for t in tensors]


@torch.library.custom_op("dwa_core::rank_one_linear", mutates_args=())
def rank_one_linear(x: Tensor, weight: Tensor, u: Tensor, v: Tensor, gate: str) -> tuple[Tensor, Tensor]:
    """(y (B, out), s (B,)) for x (B, in), weight (out, in), u (B, out), v (B, in); gate tanh|sigmoid."""
    x, weight, u, v = _contiguous(x, weight, u, v)
    return _backend(x, weight, u, v).linear_forward(x, weight, u, v, gate)


@rank_one_linear.register_fake
def _(x, weight, u, v, gate):
    return x.new_empty(x.shape[0], weight.shape[0]), x.new_empty(x.shape[0])


@torch.library.custom_op("dwa_core::rank_one_linear_backward", mutates_args=())
def rank_one_linear_backward(x: Tensor, weight: Tensor, u: Tensor, v: Tensor, gy: Tensor, gs: Tensor,
                             gate: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(dx, dW, du, dv) of `rank_one_linear` given gy (B, out) and gs (B,)."""
    x, weight, u, v, gy, gs = _contiguous(x, weight, u, v, gy, gs)
    return _backend(x, weight, u, v).linear_backward(x, weight, u, v, gy, gs, gate)


@rank_one_linear_backward.register_fake
def _(x, weight, u, v, gy, gs, gate):
    return torch.empty_like(x), torch.empty_like(weight), torch.empty_like(u), torch.empty_like(v)


def _linear_setup(ctx, inputs, output):
    x, weight, u, v, gate = inputs
    ctx.save_for_backward(x, weight, u, v)
    ctx.gate = gate


def _linear_grad(ctx, gy, gs):
    x, weight, u, v = ctx.saved_tensors
    gy = x.new_zeros(x.shape[0], weight.shape[0]) if gy is None else gy
    gs = x.new_zeros(x.shape[0]) if gs is None else gs
    return (*rank_one_linear_backward(x, weight, u, v, gy, gs, ctx.gate), None)


rank_one_linear.register_autograd(_linear_grad, setup_context=_linear_setup)


@torch.library.custom_op("dwa_core::rank_one_mask_sum", mutates_args=())
def rank_one_mask_sum(u: Tensor, v: Tensor, w: Tensor | None, gate: str, kind: str) -> Tensor:
    """(B,) S_b = Σ_i w_i φ(gate(u_b v_bᵀ))_i for u (B, out), v (B, in), w (out, in) or None (ones);
    φ = |.| (kind "abs") or relu ("relu"). The sparsity and plasticity terms of paper Eqs. 5-6."""
    u, v, w = _contiguous(u, v, w)
    return _backend(u, v).mask_sum_forward(u, v, w, gate, kind)


@rank_one_mask_sum.register_fake
def _(u, v, w, gate, kind):
    return u.new_empty(u.shape[0])


@torch.library.custom_op("dwa_core::rank_one_mask_sum_backward", mutates_args=())
def rank_one_mask_sum_backward(u: Tensor, v: Tensor, w: Tensor | None, gs: Tensor, gate: str,
                               kind: str) -> tuple[Tensor, Tensor]:
    """(du, dv) of `rank_one_mask_sum` given gs (B,)."""
    u, v, w, gs = _contiguous(u, v, w, gs)
    return _backend(u, v).mask_sum_backward(u, v, w, gate, kind, gs)


@rank_one_mask_sum_backward.register_fake
def _(u, v, w, gs, gate, kind):
    return torch.empty_like(u), torch.empty_like(v)


def _sum_setup(ctx, inputs, output):
    u, v, w, gate, kind = inputs
    ctx.save_for_backward(u, v, w)
    ctx.conf = gate, kind


def _sum_grad(ctx, gs):
    u, v, w = ctx.saved_tensors
    return (*rank_one_mask_sum_backward(u, v, w, gs, *ctx.conf), None, None, None)


rank_one_mask_sum.register_autograd(_sum_grad, setup_context=_sum_setup)
