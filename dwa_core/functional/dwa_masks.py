"""DWA loss terms on the masks (docs/original-code.md#loss-terms; paper Eqs. 5-6).

Both are sums over masked layers of per-sample reductions of H_b. For rank-1 dense masks
(H_b = gate(u_b v_bᵀ), up to 2048x2048 per sample) the reduction is a custom autograd Function that
recomputes H in the backward, so no (B, out, in) tensor is kept: on CUDA the
dwa_core::rank_one_mask_sum operator (Triton kernels, models/kernels/ops.py), on the CPU the fused C
kernel of models/kernels in float32, else one sample at a time in reused buffers. Full masks
(conv; dense without combination) exist anyway and are reduced directly."""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch

from dwa_core.functional.gates import gate_, gate_fn
from dwa_core.models import kernels
from dwa_core.models.kernels import ops
from dwa_core.models.masked import FullMask, RankOneMask

PlasticityForm = Literal["paper", "original-code"]
SparsityForm = Literal["paper", "original-code", "binary"]
PLASTICITY_FORMS, SPARSITY_FORMS = get_args(PlasticityForm), get_args(SparsityForm)


def _phi(kind: str, h: torch.Tensor, eta: float) -> torch.Tensor:
    return h.abs() if kind == "abs" else torch.relu(h * eta)


def _phi_gate_grad_(kind: str, gate: str, h: torch.Tensor, tmp: torch.Tensor) -> torch.Tensor:
    """h <- φ'(h)·gate'(h) in place, for φ = |.| or relu (the η factor is applied by the caller)."""
    if gate == "sigmoid":  # h > 0: φ' = 1 for both, gate' = h (1 - h)
        return h.sub_(torch.mul(h, h, out=tmp))
    if kind == "abs":  # sign(h)(1 - h²) = sign(h) - h|h|
        torch.abs(h, out=tmp).mul_(h)
        return h.sign_().sub_(tmp)
    positive = h > 0  # relu: [h > 0](1 - h²)
    return h.mul_(h).neg_().add_(1).mul_(positive)


class _RankOneWeightedSum(torch.autograd.Function):
    """S_b = Σ_i w_i · φ(gate(u_b v_bᵀ))_i per sample b (w (b, a) or None = ones), one sample at a time
    in reused (b, a) buffers; H_b is recomputed in the backward."""

    @staticmethod
    def forward(ctx, u, v, w, gate, kind, eta):
        ctx.save_for_backward(u, v, w)
        ctx.conf = gate, kind, eta
        out = u.new_empty(u.shape[0])
        h = u.new_empty(u.shape[1], v.shape[1])
        for i in range(u.shape[0]):
            val = _phi(kind, gate_(gate, torch.outer(u[i], v[i], out=h)), 1.0)
            out[i] = val.sum() if w is None else torch.dot(val.view(-1), w.view(-1))
        return out if kind == "abs" else out * eta

    @staticmethod
    def backward(ctx, grad):
        u, v, w = ctx.saved_tensors
        gate, kind, eta = ctx.conf
        grad = grad if kind == "abs" else grad * eta
        gu, gv = torch.empty_like(u), torch.empty_like(v)
        h, tmp = u.new_empty(u.shape[1], v.shape[1]), u.new_empty(u.shape[1], v.shape[1])
        for i in range(u.shape[0]):
            g = _phi_gate_grad_(kind, gate, gate_(gate, torch.outer(u[i], v[i], out=h)), tmp)
            if w is not None:
                g.mul_(w)
            torch.mv(g, v[i], out=gu[i])
            torch.mv(g.t(), u[i], out=gv[i])
        return gu * grad[:, None], gv * grad[:, None], None, None, None, None


class _RankOneTanhReluSum(torch.autograd.Function):
    """S_b = η Σ_i w_i relu(tanh(u_b v_bᵀ))_i, the paper's plasticity term with the tanh gate.
    relu(tanh(m)) = tanh(relu(m)) and relu(u vᵀ) = u⁺v⁺ᵀ + u⁻v⁻ᵀ (rank 2), so the sign pattern
    [m > 0] is applied through u± and v± instead of by masking every entry."""

    @staticmethod
    def forward(ctx, u, v, w, eta):
        ctx.save_for_backward(u, v, w)
        ctx.eta = eta
        parts = u.clamp(min=0), u.clamp(max=0), v.clamp(min=0), v.clamp(max=0)
        out, h = u.new_empty(u.shape[0]), u.new_empty(u.shape[1], v.shape[1])
        for i in range(u.shape[0]):
            _relu_outer(h, *(p[i] for p in parts)).tanh_()
            out[i] = h.sum() if w is None else torch.dot(h.view(-1), w.view(-1))
        return out * eta

    @staticmethod
    def backward(ctx, grad):
        u, v, w = ctx.saved_tensors
        up, un, vp, vn = u.clamp(min=0), u.clamp(max=0), v.clamp(min=0), v.clamp(max=0)
        gu, gv = torch.empty_like(u), torch.empty_like(v)
        h, g = u.new_empty(u.shape[1], v.shape[1]), u.new_empty(u.shape[1], v.shape[1])
        for i in range(u.shape[0]):
            _relu_outer(h, up[i], un[i], vp[i], vn[i]).tanh_()
            if w is None:  # g = w ⊙ (1 - h²)
                torch.mul(h, h, out=g).neg_().add_(1)
            else:
                torch.addcmul(w, torch.mul(w, h, out=g), h, value=-1, out=g)
            gu[i] = (u[i] > 0) * torch.mv(g, vp[i]) + (u[i] < 0) * torch.mv(g, vn[i])
            gv[i] = (v[i] > 0) * torch.mv(g.t(), up[i]) + (v[i] < 0) * torch.mv(g.t(), un[i])
        scale = grad[:, None] * ctx.eta
        return gu * scale, gv * scale, None, None


class _RankOneSumKernel(torch.autograd.Function):
    """S_b = Σ_i w_i φ(gate(u_b v_bᵀ))_i (times η for relu) by the fused C kernel (float32, CPU);
    w (b, a) or None = ones."""

    @staticmethod
    def forward(ctx, u, v, w, gate, kind, eta):
        u, v, w = u.contiguous(), v.contiguous(), None if w is None else w.contiguous()
        ctx.save_for_backward(u, v, w)
        ctx.conf = gate, kind, eta
        out = kernels.mask_sum_forward(u, v, w, gate, kind)
        return out if kind == "abs" else out * eta

    @staticmethod
    def backward(ctx, grad):
        u, v, w = ctx.saved_tensors
        gate, kind, eta = ctx.conf
        grad = (grad if kind == "abs" else grad * eta).contiguous()
        return (*kernels.mask_sum_backward(u, v, w, gate, kind, grad), None, None, None, None)


def _relu_outer(h, up, un, vp, vn) -> torch.Tensor:
    """h <- relu(u vᵀ) = u⁺v⁺ᵀ + u⁻v⁻ᵀ."""
    return torch.outer(up, vp, out=h).addr_(un, vn)


def weighted_sum(mask, weight: torch.Tensor | None, kind: str, eta: float = 1.0) -> torch.Tensor:
    """(B,) Σ_i weight_i · φ(H_bi) with φ = |.| ("abs") or relu(η·) ("relu")."""
    if isinstance(mask, RankOneMask):
        w = None if weight is None else weight.reshape(mask.u.shape[1], mask.v.shape[1])
        if ops.used_for(mask.u):  # CUDA: the dwa_core::rank_one_mask_sum operator (Triton kernels)
            total = ops.rank_one_mask_sum(mask.u, mask.v, w, mask.gate, kind)
            return total if kind == "abs" else total * eta
        if kernels.applies(mask.u, mask.v, *([] if w is None else [w])):
            return _RankOneSumKernel.apply(mask.u, mask.v, w, mask.gate, kind, eta)
        if kind == "relu" and mask.gate == "tanh":
            return _RankOneTanhReluSum.apply(mask.u, mask.v, w, eta)
        return _RankOneWeightedSum.apply(mask.u, mask.v, w, mask.gate, kind, eta)
    h = mask.materialise().flatten(1)  # (B, n); each pass over it below makes one (B, n) temporary
    if kind == "abs":
        return torch.linalg.vector_norm(h, 1, dim=1) if weight is None else h.abs() @ weight.flatten()
    val, scale = (torch.relu(h), eta) if eta > 0 else (torch.relu(h * eta), 1.0)  # η relu(h) for η > 0
    return scale * (val.sum(1) if weight is None else val @ weight.flatten())


def _scales(names, scale) -> list[float]:
    """κ_j per masked layer (docs/original-code.md#loss-terms scale_att_loss): None/False -> 1; True ->
    0.2 + j·0.8/J for the J masked layers (the original code's 0.2 + j·0.8/(5 − use_stem)); a sequence
    -> one per layer in order."""
    if scale is None or scale is False:
        return [1.0] * len(names)
    if scale is True:
        return [0.2 + j * 0.8 / len(names) for j in range(len(names))]
    return [float(k) for k in scale]


def plasticity_loss(state, fisher: dict, form: str = "paper", eta: float = 10.0, scale=None) -> torch.Tensor:
    """Plasticity (attention) loss, summed over masked layers j (layers without Fisher are skipped).
    paper (Eq. 5): per sample Σ_i F_i·relu(κ_j·η·H_bi), averaged over the batch (the paper writes one
      sample; we average the per-sample sums so the term does not grow with the batch size).
      Where the network's fused layer already computed Σ_i F_i·relu(H_bi) with this very F
      (RankOneMask.relu_sum, models/masked.py), that sum is used, times κ_j·η.
    original-code: mean over the batch and all positions of |κ_j·H_bi|·F_i."""
    if form not in PLASTICITY_FORMS:
        raise ValueError(f"plasticity form: must be one of {', '.join(PLASTICITY_FORMS)}, got {form!r}")
    names = list(state.masks)
    total = state.embedding.new_zeros(())
    for name, kappa in zip(names, _scales(names, scale)):
        if name not in fisher:
            continue
        mask, f = state.masks[name], fisher[name].to(state.embedding.dtype)
        fused = getattr(mask, "relu_sum", None)  # Σ F relu(H_b), computed by the layer with this very F
        if form == "paper" and fused is not None and mask.relu_weight is fisher[name] and eta * kappa > 0:
            total = total + (fused * (eta * kappa)).mean()  # relu(c H) = c relu(H) for c > 0
        elif form == "paper":
            total = total + weighted_sum(mask, f, "relu", eta * kappa).mean()
        else:
            total = total + kappa * weighted_sum(mask, f, "abs").mean() / f.numel()
    return total


def sparsity_loss(state, mu: float = 0.2, form: str = "paper") -> torch.Tensor:
    """Sparsity regulariser R = Σ_j relu(r_bj − μ) per sample b, with r_bj for layer j:
    paper: r = mean_i |H_bi|, a differentiable surrogate of Eq. 6's non-zero fraction that pushes
      masks towards 0 (sparse) once their mean magnitude exceeds μ; averaged over the batch (the
      paper writes one sample; as for the other paper forms, the term does not grow with B);
    binary (Eq. 6 literally): r = fraction of H_bi ≠ 0, no gradient; averaged over the batch;
    original-code: r = mean_i (1 − |H_bi|) (pushes |H| towards 1, i.e. dense: the original code's quirk),
      summed over the batch as the original code did."""
    if form not in SPARSITY_FORMS:
        raise ValueError(f"sparsity form: must be one of {', '.join(SPARSITY_FORMS)}, got {form!r}")
    total = state.embedding.new_zeros(())
    for mask in state.masks.values():
        n = _numel(mask)
        if form == "binary":
            r = _nonzero_fraction(mask).to(total.dtype)
        else:
            abs_sum = getattr(mask, "abs_sum", None)  # computed by the fast masked layer's forward
            mean_abs = (weighted_sum(mask, None, "abs") if abs_sum is None else abs_sum) / n
            r = 1 - mean_abs if form == "original-code" else mean_abs
        per_sample = torch.relu(r - mu)
        total = total + (per_sample.sum() if form == "original-code" else per_sample.mean())
    return total


# Elements of one (chunk, out, in) temporary of the binary sparsity form (~32 MB in float32).
CHUNK_ELEMENTS = 1 << 23


@torch.no_grad()
def _nonzero_fraction(mask, chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """(B,) fraction of H_bi != 0; rank-1 masks are materialised a chunk of samples at a time, at
    most `chunk_elements` entries per chunk (at least one sample)."""
    if isinstance(mask, FullMask):
        return (mask.h != 0).flatten(1).float().mean(1)
    step = max(1, min(mask.u.shape[0], chunk_elements // max(_numel(mask), 1)))
    act = gate_fn(mask.gate)
    return torch.cat([(act(mask.u[s:s + step, :, None] * mask.v[s:s + step, None, :]) != 0).flatten(1)
                      .float().mean(1) for s in range(0, mask.u.shape[0], step)])


def _numel(mask) -> int:
    if isinstance(mask, FullMask):
        return math.prod(mask.shape)
    return mask.u.shape[1] * mask.v.shape[1]
