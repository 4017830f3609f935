"""Per-sample masked layers of DWA (docs/original-code.md#masked-layers-and-mask-generation; paper §3-4).

Sample b uses the weight W ⊙ H_b, with H_b = gate(·) produced from its embedding. Two mask kinds:

* `FullMask`: the generator emits every entry (conv masks, dense masks without combination):
  H (B, *weight shape) exists anyway, so both paths use it directly.
* `RankOneMask`: dense masks with `use_combination`: H_b = gate(u_b v_bᵀ) reshaped row-major to
  (out, in), u_b ∈ R^b, v_b ∈ R^a. The gate is nonlinear, so y_b = (W ⊙ H_b) x_b does not factor,
  but the fast path never stores a (B, out, in) tensor. On the CPU in float32, when the factors
  line up with the weight (b = out, a = in: every dense layer of the paper's networks), a fused C
  kernel (kernels/rank_one.c, compiled on first use) generates each mask entry, uses it and drops
  it, in the forward and again in the backward: memory O(B·(out + in)) and one pass over the
  weights per batch. On CUDA, with aligned factors, the layer is the `dwa_core::rank_one_linear`
  operator (kernels/ops.py): Triton kernels in float32 (kernels/triton_rank_one.py), the same
  memory bound. Otherwise (float64 on the CPU, no compiler, unaligned factors) a custom autograd
  Function walks the batch one sample at a time in reused (out, in) buffers.

`impl="torch"` forces the PyTorch Function; `impl="reference"` is the straightforward formulation
(materialise W ⊙ H_b for the whole batch, grouped conv / bmm), kept for tests and benchmarks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dwa_core import numerics
from dwa_core.functional.gates import gate_, gate_fn
from dwa_core.models import kernels
from dwa_core.models.kernels import ops

# "fast": on CUDA the dwa_core::rank_one_linear operator (Triton), on the CPU the C kernel where it
# applies, else the PyTorch per-sample Function; "torch": always the latter; "reference":
# materialise W ⊙ H_b for the whole batch.
IMPLS = ("fast", "torch", "reference")


def check_impl(impl: str) -> str:
    if impl not in IMPLS:
        raise ValueError(f"masked_impl: must be one of {', '.join(IMPLS)}, got {impl!r}")
    return impl


@dataclass
class PreActivation:
    """A full mask before its tanh gate: Z (B, n) contiguous, the generator's product without its bias,
    the bias (n,) or None, and the mask's shape (n = prod(shape))."""
    z: torch.Tensor
    bias: torch.Tensor | None
    shape: tuple[int, ...]

    def gate(self) -> torch.Tensor:
        """H = tanh(Z + bias) (B, *shape) by the C kernels (`_FullTanh`)."""
        return _FullTanh.apply(self.z, self.bias).view(-1, *self.shape)


@dataclass
class FullMask:
    """H (B, *shape), already gated. The fast layers fill abs_sum (B,) = Σ_i |H_bi| for the sparsity
    loss and, with relu_weight F (*shape) set before the layer runs, relu_sum (B,) = Σ_i F_i relu(H_bi)
    for the plasticity loss (`full_mask_terms`). Under numerics 5 on the fast path the generator hands
    over its pre-activation `pre` instead (FullMask(pre=...)): the layer gates it in the pass that
    makes W ⊙ H (`full_mask_product`), and reading `h` before the layer gates it on its own; the two
    give the same bits."""
    gated: torch.Tensor | None = None  # H, or None while `pre` waits for the layer
    abs_sum: torch.Tensor | None = None
    relu_weight: torch.Tensor | None = None
    relu_sum: torch.Tensor | None = None
    pre: PreActivation | None = None

    @property
    def h(self) -> torch.Tensor:
        if self.gated is None:
            self.gated, self.pre = self.pre.gate(), None
        return self.gated

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.pre.shape) if self.gated is None else tuple(self.gated.shape[1:])

    def materialise(self) -> torch.Tensor:
        return self.h


@dataclass
class RankOneMask:
    """H_b = gate(u_b v_bᵀ) with u (B, b), v (B, a), reshaped row-major to `shape` = (out, in)."""
    u: torch.Tensor
    v: torch.Tensor
    gate: str
    shape: tuple[int, ...]
    abs_sum: torch.Tensor | None = None  # (B,) Σ_i |H_bi|, filled by the fast layer for the sparsity loss
    # With relu_weight F (out, in) set before the layer runs, the C kernel also fills relu_sum (B,)
    # = Σ_i F_i relu(H_bi), the plasticity term of paper Eq. 5 (η aside), from the same pass over H.
    relu_weight: torch.Tensor | None = None
    relu_sum: torch.Tensor | None = None

    def materialise(self) -> torch.Tensor:
        m = self.u[:, :, None] * self.v[:, None, :]  # (B, b, a)
        return gate_fn(self.gate)(m).reshape(-1, *self.shape)


class _RankOneMaskedLinear(torch.autograd.Function):
    """y_b = (W ⊙ gate(u_b v_bᵀ)) x_b, one sample at a time in reused (out, in) buffers; H_b is
    recomputed in the backward. Also returns s_b = Σ_i |H_bi| (the sparsity loss's statistic, one
    norm per sample while H_b is at hand). With G_b = gate'(H_b) ⊙ (W ⊙ gy_b x_bᵀ + ds_b·sign(H_b)):
    dW = Σ_b H_b ⊙ gy_b x_bᵀ, dx_b = (W ⊙ H_b)ᵀ gy_b, du_b = G_b v_b, dv_b = G_bᵀ u_b
    (b x a layout)."""

    @staticmethod
    def forward(ctx, x, weight, u, v, gate):
        ctx.save_for_backward(x, weight, u, v)
        ctx.gate = gate
        ctx.set_materialize_grads(False)
        y, abs_sum = x.new_empty(x.shape[0], weight.shape[0]), x.new_empty(x.shape[0])
        h = torch.empty(u.shape[1], v.shape[1], dtype=x.dtype, device=x.device)  # (b, a) = H_b
        h_w = h.view(weight.shape)  # (out, in)
        for i in range(x.shape[0]):
            gate_(gate, torch.outer(u[i], v[i], out=h))
            abs_sum[i] = torch.linalg.vector_norm(h, 1)
            torch.mv(h_w.mul_(weight), x[i], out=y[i])
        return y, abs_sum

    @staticmethod
    def backward(ctx, gy, g_abs):
        x, weight, u, v = ctx.saved_tensors
        if gy is None:
            gy = x.new_zeros(x.shape[0], weight.shape[0])
        gx, gw = torch.empty_like(x), torch.zeros_like(weight)
        gu, gv = torch.empty_like(u), torch.empty_like(v)
        h = torch.empty(u.shape[1], v.shape[1], dtype=x.dtype, device=x.device)  # (b, a)
        h_w, outer, d = h.view(weight.shape), torch.empty_like(weight), torch.empty_like(weight)
        one = x.new_ones(())
        for i in range(x.shape[0]):
            gate_(ctx.gate, torch.outer(u[i], v[i], out=h))
            torch.outer(gy[i], x[i], out=outer)  # (out, in)
            gw.addcmul_(h_w, outer)
            torch.mv(torch.mul(weight, h_w, out=d).t(), gy[i], out=gx[i])  # (W ⊙ H)ᵀ gy
            # W ⊙ gate'(H): tanh' = 1 - H², so W - (W⊙H)⊙H; sigmoid' = H(1 - H), so W⊙H - (W⊙H)⊙H
            torch.addcmul(weight if ctx.gate == "tanh" else d, d, h_w, value=-1, out=d).mul_(outer)
            torch.mv(d.view(h.shape), v[i], out=gu[i])
            torch.mv(d.view(h.shape).t(), u[i], out=gv[i])
            # d Σ|H| = sign(H) ⊙ gate'(H); for tanh sign(u vᵀ) = sign(u) sign(v)ᵀ
            if g_abs is not None:
                torch.addcmul(one if ctx.gate == "tanh" else h, h, h, value=-1, out=h)  # gate'(H)
                sv, su = (v[i].abs(), u[i].abs()) if ctx.gate == "tanh" else (v[i], u[i])
                du, dv = torch.mv(h, sv), torch.mv(h.t(), su)
                if ctx.gate == "tanh":
                    du, dv = du * u[i].sign(), dv * v[i].sign()
                gu[i] += g_abs[i] * du
                gv[i] += g_abs[i] * dv
        return gx, gw, gu, gv, None


class _RankOneKernel(torch.autograd.Function):
    """The same layer as `_RankOneMaskedLinear`, computed by the fused C kernel (float32, CPU, u of
    length out and v of length in); see kernels/rank_one.c for the formulas. With relu_weight F
    (out, in), a third output r_b = Σ F ⊙ relu(H_b) from the same pass (else r is zeros, unused)."""

    @staticmethod
    def forward(ctx, x, weight, u, v, gate, relu_weight):
        x, weight, u, v = x.contiguous(), weight.contiguous(), u.contiguous(), v.contiguous()
        relu_weight = None if relu_weight is None else relu_weight.detach().contiguous()
        ctx.save_for_backward(x, weight, u, v, relu_weight)
        ctx.gate = gate
        ctx.set_materialize_grads(False)
        out = kernels.linear_forward(x, weight, u, v, gate, relu_weight)
        return out if relu_weight is not None else (*out, x.new_zeros(x.shape[0]))

    @staticmethod
    def backward(ctx, gy, g_abs, g_relu):
        x, weight, u, v, relu_weight = ctx.saved_tensors
        gy = x.new_zeros(x.shape[0], weight.shape[0]) if gy is None else gy.contiguous()
        g_abs = x.new_zeros(x.shape[0]) if g_abs is None else g_abs.contiguous()
        if relu_weight is not None:
            g_relu = x.new_zeros(x.shape[0]) if g_relu is None else g_relu.contiguous()
        else:
            g_relu = None
        grads = kernels.linear_backward(x, weight, u, v, gy, g_abs, ctx.gate, relu_weight, g_relu)
        return (*grads, None, None)


class _FullMaskTerms(torch.autograd.Function):
    """(s, r) with s_b = Σ_i |H_bi| and r_b = Σ_i f_i relu(H_bi) of a full mask H (B, n), f (n,) or
    None (r then zeros, unused). The forward is the losses' own formula (vector_norm; relu(H) @ f);
    the backward is one pass of the C kernel (kernels.mask_terms_backward) instead of autograd's five
    (sign, product, outer product, threshold, sum), with autograd's bits: the sparsity and plasticity
    terms reach H through this one node, and autograd adds the layer's own gradient of H after it,
    as it did."""

    @staticmethod
    def forward(ctx, h, f):
        ctx.save_for_backward(h, f)
        ctx.set_materialize_grads(False)
        abs_sum = torch.linalg.vector_norm(h, 1, dim=1)
        return abs_sum, (torch.relu(h) @ f if f is not None else h.new_zeros(h.shape[0]))

    @staticmethod
    def backward(ctx, g_abs, g_relu):
        h, f = ctx.saved_tensors
        if f is None:
            g_relu = None
        if g_abs is None and g_relu is None:
            return None, None
        as_input = (lambda g: None if g is None else g.contiguous())
        return kernels.mask_terms_backward(h, f, as_input(g_abs), as_input(g_relu)), None


def full_mask_terms(mask: FullMask) -> None:
    """Fill mask.abs_sum and, with mask.relu_weight, mask.relu_sum (see FullMask), when the C kernels
    take H (float32 on the CPU) and autograd records (without gradients nothing is gained); else leave
    them None (the losses then reduce H themselves, to the same values)."""
    if not (torch.is_grad_enabled() and mask.h.requires_grad):
        return
    h, f = mask.h.flatten(1), _flat_relu_weight(mask)
    if not h.is_contiguous() or not kernels.applies(h):
        return
    mask.abs_sum, relu_sum = _FullMaskTerms.apply(h, f)
    mask.relu_sum = None if f is None else relu_sum


def _flat_relu_weight(mask: FullMask) -> torch.Tensor | None:
    """mask.relu_weight flattened (n,), detached and contiguous, for the C kernels; None when unset or
    of another dtype or device (the plasticity loss then reduces H on its own). Raises ValueError
    when its shape is not the mask's."""
    f = mask.relu_weight
    if f is not None and tuple(f.shape) != mask.shape:
        raise ValueError(f"relu_weight: expected the mask's shape {mask.shape}, "
                         f"got {tuple(f.shape)}")
    if f is None or not kernels.applies(f):
        return None
    return f.detach().reshape(-1).contiguous()


class _FullTanh(torch.autograd.Function):
    """H = tanh(Z + bias) by the C kernels' tanh (numerics 5), Z (B, n) contiguous, bias (n,) or None;
    dZ = dH (1 - H²) and dbias = Σ_b dZ_b in one C pass."""

    @staticmethod
    def forward(ctx, z, bias):
        h = kernels.full_tanh(z, None if bias is None else bias.contiguous())
        ctx.save_for_backward(h)
        ctx.with_bias = bias is not None
        return h

    @staticmethod
    def backward(ctx, dh):
        (h,) = ctx.saved_tensors
        return kernels.full_tanh_backward(h, dh.contiguous(), ctx.with_bias)


class _FullMaskProduct(torch.autograd.Function):
    """(W ⊙ H, s, r) of a full mask H (B, n) and a weight W (n,) in one C pass (numerics 5), with
    s_b = Σ_i |H_bi| and, with f (n,), r_b = Σ_i f_i relu(H_bi) (else r is zeros, unused); the
    backward is one C pass too (kernels.full_product_backward)."""

    @staticmethod
    def forward(ctx, h, weight, f):
        ctx.save_for_backward(h, weight, f)
        ctx.set_materialize_grads(False)
        wh, abs_sum, relu_sum = kernels.full_product(h, weight, f)
        return wh, abs_sum, (relu_sum if f is not None else h.new_zeros(h.shape[0]))

    @staticmethod
    def backward(ctx, g_wh, g_abs, g_relu):
        h, weight, f = ctx.saved_tensors
        g_wh = torch.zeros_like(h) if g_wh is None else g_wh.contiguous()
        as_input = (lambda g: None if g is None else g.contiguous())
        dh, dw = kernels.full_product_backward(h, weight, f, g_wh, as_input(g_abs),
                                               as_input(g_relu) if f is not None else None)
        return dh, dw, None


class _FullTanhProduct(torch.autograd.Function):
    """(H, W ⊙ H, s, r) from a full mask's pre-activation Z (B, n) and bias (n,) or None, the weight W
    (n,) and f (n,) or None: `_FullTanh` then `_FullMaskProduct` in one C pass each way
    (kernels.full_tanh_product), the same bits. A gradient of H from elsewhere (a loss reading
    mask.h) is added to the product's dH before the tanh's backward, as autograd added them (the
    product's dH arrives last: its node runs after the layers above it); with no gradient of the
    product's outputs, H's alone goes through, as the two nodes did (the product's was not run)."""

    @staticmethod
    def forward(ctx, z, bias, weight, f):
        h, wh, abs_sum, relu_sum = kernels.full_tanh_product(z, bias, weight, f)
        ctx.save_for_backward(h, weight, f)
        ctx.with_bias = bias is not None
        ctx.set_materialize_grads(False)
        return h, wh, abs_sum, (relu_sum if f is not None else h.new_zeros(h.shape[0]))

    @staticmethod
    def backward(ctx, g_h, g_wh, g_abs, g_relu):
        h, weight, f = ctx.saved_tensors
        if g_wh is None and g_abs is None and (g_relu is None or f is None):  # only H was used
            dz, db = kernels.full_tanh_backward(h, g_h.contiguous(), ctx.with_bias)
            return dz, db, None, None
        g_wh = torch.zeros_like(h) if g_wh is None else g_wh.contiguous()
        as_input = (lambda g: None if g is None else g.contiguous())
        gs, gr = as_input(g_abs), as_input(g_relu) if f is not None else None
        if g_h is None:
            dz, dw, db = kernels.full_tanh_product_backward(h, weight, f, g_wh, gs, gr, ctx.with_bias)
        else:
            dh, dw = kernels.full_product_backward(h, weight, f, g_wh, gs, gr)
            dz, db = kernels.full_tanh_backward(h, (g_h + dh).contiguous(), ctx.with_bias)
        return dz, db, dw, None


def pre_activation(e: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, impl: str,
                   shape: tuple[int, ...]) -> PreActivation | None:
    """A full mask's generator output before its tanh, Z = e Wᵀ (B, n) for e (B, d), W (n, d), with
    its bias (n,) or None kept apart: under numerics 5 with impl "fast" on float32 CPU tensors the C
    kernels add the bias in their tanh's pass (and sum its gradient in the backward's), so the matrix
    product has no bias to broadcast into its output first; None where they do not apply (the caller
    then uses torch.nn.functional.linear and torch.tanh)."""
    tensors = (e, weight) if bias is None else (e, weight, bias)
    if numerics.VERSION < 5 or impl != "fast" or not kernels.applies(*tensors):
        return None
    return PreActivation(F.linear(e, weight).contiguous(), None if bias is None else bias.contiguous(), shape)


def full_mask_product(weight: torch.Tensor, mask: FullMask) -> torch.Tensor | None:
    """W ⊙ H (B, *weight shape) by one C pass under numerics 5 (with H's tanh when the mask still holds
    its pre-activation), filling mask.abs_sum and, with mask.relu_weight, mask.relu_sum as
    `full_mask_terms` does; None where the kernels do not apply (float32 CPU tensors only) or under
    numerics 3."""
    pending = mask.pre
    if numerics.VERSION < 5 or not kernels.applies(weight, mask.h if pending is None else pending.z):
        return None
    f = _flat_relu_weight(mask)
    if pending is not None:  # the generator left the tanh to this pass
        h, wh, mask.abs_sum, relu_sum = _FullTanhProduct.apply(pending.z, pending.bias, weight.reshape(-1), f)
        mask.gated, mask.pre = h.view(-1, *pending.shape), None
    else:
        h = mask.h.flatten(1).contiguous()
        wh, mask.abs_sum, relu_sum = _FullMaskProduct.apply(h, weight.reshape(-1), f)
    mask.relu_sum = None if f is None else relu_sum
    return wh.view(-1, *mask.shape)


def _masked_weight(weight: torch.Tensor, mask: FullMask, impl: str) -> torch.Tensor:
    """W ⊙ H (B, *weight shape) of a full mask; with impl "fast" the loss statistics too (in the
    product's C pass under numerics 5, else `full_mask_terms`)."""
    if impl == "fast" and (w := full_mask_product(weight, mask)) is not None:
        return w
    w = weight * mask.materialise()
    if impl == "fast":
        full_mask_terms(mask)  # after the product: autograd adds the product's dH last, as before
    return w


def kernel_applies(x: torch.Tensor, weight: torch.Tensor, mask: RankOneMask) -> bool:
    """Whether the fused C kernel computes this layer (else the PyTorch per-sample Function)."""
    return factors_aligned(weight, mask) and kernels.applies(x, weight, mask.u, mask.v)


def factors_aligned(weight: torch.Tensor, mask: RankOneMask) -> bool:
    """u_b has one entry per output row and v_b one per input column (H_b = gate(u_b v_bᵀ) is (out, in))."""
    return mask.u.shape[1] == weight.shape[0] and mask.v.shape[1] == weight.shape[1]


def rank_one_masked_linear(x, weight, mask: RankOneMask, use_kernel: bool = True) -> torch.Tensor:
    """Fast path; stores Σ_i |H_bi| on the mask (differentiable) for the sparsity loss, and, on the C
    kernel's path with `mask.relu_weight` set, Σ_i F_i relu(H_bi) for the plasticity loss. On CUDA,
    the `dwa_core::rank_one_linear` operator (Triton kernels in float32; kernels/ops.py)."""
    if use_kernel and ops.used_for(x) and factors_aligned(weight, mask):
        y, mask.abs_sum = ops.rank_one_linear(x, weight, mask.u, mask.v, mask.gate)
        return y
    if use_kernel and kernel_applies(x, weight, mask):
        relu_weight = mask.relu_weight
        if relu_weight is not None and not kernels.applies(relu_weight):
            relu_weight = None  # another dtype or device: the plasticity loss reduces H on its own
        if relu_weight is not None and relu_weight.shape != weight.shape:
            raise ValueError(f"relu_weight: expected the weight's shape {tuple(weight.shape)}, "
                             f"got {tuple(relu_weight.shape)}")
        y, mask.abs_sum, relu_sum = _RankOneKernel.apply(x, weight, mask.u, mask.v, mask.gate, relu_weight)
        mask.relu_sum = None if relu_weight is None else relu_sum
        return y
    y, mask.abs_sum = _RankOneMaskedLinear.apply(x, weight, mask.u, mask.v, mask.gate)
    return y


class MaskedLinear(nn.Module):
    """y_b = (W ⊙ H_b) x_b + bias; the bias is not masked
    (docs/original-code.md#masked-layers-and-mask-generation)."""
    init_kind = "linear"

    def __init__(self, in_features: int, out_features: int, impl: str = "fast"):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.reset_parameters()
        self.impl = check_impl(impl)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """nn.Linear's default weight init (the original code had none); bias 0."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias.zero_()

    def forward(self, x: torch.Tensor, mask) -> torch.Tensor:
        if self.impl != "reference" and isinstance(mask, RankOneMask):
            return rank_one_masked_linear(x, self.weight, mask, use_kernel=self.impl == "fast") + self.bias
        w = _masked_weight(self.weight, mask, self.impl)  # (B, out, in)
        return torch.bmm(w, x[:, :, None]).squeeze(-1) + self.bias


class MaskedConv2d(nn.Module):
    """out_b = conv(x_b, W ⊙ H_b) + bias; stride 1, no padding
    (docs/original-code.md#masked-layers-and-mask-generation)."""
    init_kind = "conv"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, impl: str = "fast"):
        super().__init__()
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.reset_parameters()
        self.impl = check_impl(impl)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """nn.Conv2d's default weight init; bias 0."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias.zero_()

    def forward(self, x: torch.Tensor, mask) -> torch.Tensor:
        w = _masked_weight(self.weight, mask, self.impl)  # (B, out, in, k, k)
        batch, out_c = w.shape[:2]
        rows, cols_out = x.shape[-2] - self.kernel_size + 1, x.shape[-1] - self.kernel_size + 1
        if self.impl == "reference":  # one grouped convolution, groups = B (as the original code)
            y = F.conv2d(x.reshape(1, -1, *x.shape[2:]), w.reshape(-1, *w.shape[2:]), groups=batch)
            return y.view(batch, out_c, rows, cols_out) + self.bias[:, None, None]
        cols = F.unfold(x, self.kernel_size)  # (B, in·k·k, L): im2col
        y = torch.bmm(w.reshape(batch, out_c, -1), cols)  # (B, out, L)
        return y.view(batch, out_c, rows, cols_out) + self.bias[:, None, None]
