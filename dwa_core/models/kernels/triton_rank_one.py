"""Triton kernels of the rank-1 masked layer of DWA and of its mask losses (the CUDA fast path).

The same maths as rank_one.c (see its header for the formulas), tiled for a GPU: a program owns a
block of output rows o and loops over the input index k (forward), or owns a (rows, columns) tile
of W and loops over the batch (backward), so every mask entry H[b,o,k] = gate(u[b,o] v[b,k]) is
generated in registers, used and dropped: no (B, O, I) tensor, in the forward or the backward.
A tile is (BLOCK_B, BLOCK_O, BLOCK_K) entries.

Sums over o (dx, dv) and over k (du) leave a program as partial sums, one slice per program along
the summed axis, which PyTorch adds afterwards: no atomics, so the results are deterministic.

Float32 only. The gates use plain arithmetic (exp, a polynomial near 0) that the Triton
interpreter also runs: `TRITON_INTERPRET=1` executes these kernels on CPU tensors (that is how the
tests check them without a GPU). The block sizes are untuned: no GPU was available when this was
written; tune them (`BLOCKS`) on one."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

GATE_CODES = {"tanh": 0, "sigmoid": 1}
PHI_CODES = {"abs": 0, "relu": 1}
BLOCKS = dict(BLOCK_B=8, BLOCK_O=32, BLOCK_K=32)  # 8192 entries per tile; untuned
NUM_WARPS = 4


@triton.jit
def _tanh(z):
    """tanh(z) = sign(z) (1 - e) / (1 + e), e = exp(-2|z|); its Taylor polynomial below |z| < 1/8,
    where 1 - e would cancel (relative error < 2e-9 there)."""
    a = tl.abs(z)
    e = tl.exp(-2.0 * a)
    a2 = a * a
    small = a * (1.0 + a2 * (-0.3333333333333333 + a2 * (0.13333333333333333 + a2 * -0.05396825396825397)))
    t = tl.where(a < 0.125, small, (1.0 - e) / (1.0 + e))
    return tl.where(z < 0, -t, t)


@triton.jit
def _sigmoid(z):
    """sigmoid(z) with e = exp(-|z|) <= 1 (no overflow): 1 / (1 + e) for z >= 0, e / (1 + e) below."""
    e = tl.exp(-tl.abs(z))
    q = 1.0 / (1.0 + e)
    return tl.where(z >= 0, q, e * q)


@triton.jit
def _gate(z, GATE: tl.constexpr):
    if GATE == 0:
        return _tanh(z)
    else:
        return _sigmoid(z)


@triton.jit
def _gate_grad(h, GATE: tl.constexpr):
    """gate'(z) written with h = gate(z)."""
    if GATE == 0:
        return 1.0 - h * h
    else:
        return h * (1.0 - h)


@triton.jit
def _sign(z):
    return tl.where(z > 0, 1.0, tl.where(z < 0, -1.0, 0.0))


@triton.jit
def _phi_grad(z, GATE: tl.constexpr, PHI: tl.constexpr):
    """φ'(H) as a function of z: sign(H) for |.|, [H > 0] for relu; H > 0 always for sigmoid."""
    if GATE == 1:
        return tl.full(z.shape, 1.0, tl.float32)
    elif PHI == 0:
        return _sign(z)
    else:
        return tl.where(z > 0, 1.0, 0.0)


@triton.jit
def _linear_forward_kernel(x, w, u, v, y, abs_rows, n_b, n_o, n_i, GATE: tl.constexpr,
                           BLOCK_B: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_K: tl.constexpr):
    """y[b,o] = Σ_k W[o,k] H x[b,k] and abs_rows[b,o] = Σ_k |H| for a (BLOCK_B, BLOCK_O) block."""
    ob = tl.program_id(0) * BLOCK_O + tl.arange(0, BLOCK_O)
    bb = tl.program_id(1) * BLOCK_B + tl.arange(0, BLOCK_B)
    bo_mask = (bb[:, None] < n_b) & (ob[None, :] < n_o)
    u_t = tl.load(u + bb[:, None] * n_o + ob[None, :], mask=bo_mask, other=0.0)  # (Bb, Ob)
    acc = tl.zeros((BLOCK_B, BLOCK_O), tl.float32)
    abs_acc = tl.zeros((BLOCK_B, BLOCK_O), tl.float32)
    for k0 in range(0, n_i, BLOCK_K):
        kb = k0 + tl.arange(0, BLOCK_K)
        bk_mask = (bb[:, None] < n_b) & (kb[None, :] < n_i)
        x_t = tl.load(x + bb[:, None] * n_i + kb[None, :], mask=bk_mask, other=0.0)  # (Bb, Kb)
        v_t = tl.load(v + bb[:, None] * n_i + kb[None, :], mask=bk_mask, other=0.0)
        w_t = tl.load(w + ob[:, None] * n_i + kb[None, :], mask=(ob[:, None] < n_o) & (kb[None, :] < n_i),
                      other=0.0)  # (Ob, Kb)
        valid = bo_mask[:, :, None] & (kb[None, None, :] < n_i)
        h = tl.where(valid, _gate(u_t[:, :, None] * v_t[:, None, :], GATE), 0.0)  # (Bb, Ob, Kb)
        acc += tl.sum(h * w_t[None, :, :] * x_t[:, None, :], axis=2)
        abs_acc += tl.sum(tl.abs(h), axis=2)
    out = bb[:, None] * n_o + ob[None, :]
    tl.store(y + out, acc, mask=bo_mask)
    tl.store(abs_rows + out, abs_acc, mask=bo_mask)


@triton.jit
def _linear_backward_kernel(x, w, u, v, gy, gs, gw, part_x, part_u, part_v, n_b, n_o, n_i, GATE: tl.constexpr,
                            BLOCK_B: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_K: tl.constexpr):
    """For one (BLOCK_O, BLOCK_K) tile of W, over the whole batch: dW's tile, and this tile's share
    of dx, dv (part_x, part_v[o-block]) and du (part_u[k-block]). G = gate'(H) (W gy x + gs sign(H))."""
    pid_o, pid_k = tl.program_id(0), tl.program_id(1)
    ob = pid_o * BLOCK_O + tl.arange(0, BLOCK_O)
    kb = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    ok_mask = (ob[:, None] < n_o) & (kb[None, :] < n_i)
    w_t = tl.load(w + ob[:, None] * n_i + kb[None, :], mask=ok_mask, other=0.0)  # (Ob, Kb)
    gw_acc = tl.zeros((BLOCK_O, BLOCK_K), tl.float32)
    for b0 in range(0, n_b, BLOCK_B):
        bb = b0 + tl.arange(0, BLOCK_B)
        bo_mask = (bb[:, None] < n_b) & (ob[None, :] < n_o)
        bk_mask = (bb[:, None] < n_b) & (kb[None, :] < n_i)
        u_t = tl.load(u + bb[:, None] * n_o + ob[None, :], mask=bo_mask, other=0.0)  # (Bb, Ob)
        gy_t = tl.load(gy + bb[:, None] * n_o + ob[None, :], mask=bo_mask, other=0.0)
        x_t = tl.load(x + bb[:, None] * n_i + kb[None, :], mask=bk_mask, other=0.0)  # (Bb, Kb)
        v_t = tl.load(v + bb[:, None] * n_i + kb[None, :], mask=bk_mask, other=0.0)
        gs_t = tl.load(gs + bb, mask=bb < n_b, other=0.0)  # (Bb,)
        valid = bo_mask[:, :, None] & (kb[None, None, :] < n_i)
        z = u_t[:, :, None] * v_t[:, None, :]  # (Bb, Ob, Kb)
        h = _gate(z, GATE)
        gyx = gy_t[:, :, None] * x_t[:, None, :]
        gw_acc += tl.sum(tl.where(valid, h * gyx, 0.0), axis=0)
        g = w_t[None, :, :] * gyx
        if GATE == 0:  # sign(H) = sign(z) for tanh; H > 0 for sigmoid
            g += gs_t[:, None, None] * _sign(z)
        else:
            g += gs_t[:, None, None]
        g = tl.where(valid, _gate_grad(h, GATE) * g, 0.0)
        hx = tl.where(valid, w_t[None, :, :] * h * gy_t[:, :, None], 0.0)
        bk = bb[:, None] * n_i + kb[None, :]
        tl.store(part_x + pid_o * n_b * n_i + bk, tl.sum(hx, axis=1), mask=bk_mask)
        tl.store(part_v + pid_o * n_b * n_i + bk, tl.sum(g * u_t[:, :, None], axis=1), mask=bk_mask)
        bo = bb[:, None] * n_o + ob[None, :]
        tl.store(part_u + pid_k * n_b * n_o + bo, tl.sum(g * v_t[:, None, :], axis=2), mask=bo_mask)
    tl.store(gw + ob[:, None] * n_i + kb[None, :], gw_acc, mask=ok_mask)


@triton.jit
def _sum_forward_kernel(u, v, w, rows, n_b, n_o, n_i, HAS_W: tl.constexpr, GATE: tl.constexpr,
                        PHI: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_O: tl.constexpr,
                        BLOCK_K: tl.constexpr):
    """rows[b,o] = Σ_k w[o,k] φ(H) for a (BLOCK_B, BLOCK_O) block; φ = |.| or relu."""
    ob = tl.program_id(0) * BLOCK_O + tl.arange(0, BLOCK_O)
    bb = tl.program_id(1) * BLOCK_B + tl.arange(0, BLOCK_B)
    bo_mask = (bb[:, None] < n_b) & (ob[None, :] < n_o)
    u_t = tl.load(u + bb[:, None] * n_o + ob[None, :], mask=bo_mask, other=0.0)
    acc = tl.zeros((BLOCK_B, BLOCK_O), tl.float32)
    for k0 in range(0, n_i, BLOCK_K):
        kb = k0 + tl.arange(0, BLOCK_K)
        bk_mask = (bb[:, None] < n_b) & (kb[None, :] < n_i)
        v_t = tl.load(v + bb[:, None] * n_i + kb[None, :], mask=bk_mask, other=0.0)
        h = _gate(u_t[:, :, None] * v_t[:, None, :], GATE)
        val = tl.abs(h) if PHI == 0 else tl.maximum(h, 0.0)
        if HAS_W:
            w_t = tl.load(w + ob[:, None] * n_i + kb[None, :], mask=(ob[:, None] < n_o) & (kb[None, :] < n_i),
                          other=0.0)
            val = val * w_t[None, :, :]
        acc += tl.sum(tl.where(bo_mask[:, :, None] & (kb[None, None, :] < n_i), val, 0.0), axis=2)
    tl.store(rows + bb[:, None] * n_o + ob[None, :], acc, mask=bo_mask)


@triton.jit
def _sum_backward_kernel(u, v, w, gs, part_u, part_v, n_b, n_o, n_i, HAS_W: tl.constexpr, GATE: tl.constexpr,
                         PHI: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_O: tl.constexpr,
                         BLOCK_K: tl.constexpr):
    """D = gs[b] w φ'(H) gate'(H) on one (BLOCK_O, BLOCK_K) tile over the batch: its share of
    du = Σ_k D v (part_u[k-block]) and dv = Σ_o D u (part_v[o-block])."""
    pid_o, pid_k = tl.program_id(0), tl.program_id(1)
    ob = pid_o * BLOCK_O + tl.arange(0, BLOCK_O)
    kb = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    ok_mask = (ob[:, None] < n_o) & (kb[None, :] < n_i)
    if HAS_W:
        w_t = tl.load(w + ob[:, None] * n_i + kb[None, :], mask=ok_mask, other=0.0)
    for b0 in range(0, n_b, BLOCK_B):
        bb = b0 + tl.arange(0, BLOCK_B)
        bo_mask = (bb[:, None] < n_b) & (ob[None, :] < n_o)
        bk_mask = (bb[:, None] < n_b) & (kb[None, :] < n_i)
        u_t = tl.load(u + bb[:, None] * n_o + ob[None, :], mask=bo_mask, other=0.0)
        v_t = tl.load(v + bb[:, None] * n_i + kb[None, :], mask=bk_mask, other=0.0)
        gs_t = tl.load(gs + bb, mask=bb < n_b, other=0.0)
        z = u_t[:, :, None] * v_t[:, None, :]
        d = gs_t[:, None, None] * _gate_grad(_gate(z, GATE), GATE) * _phi_grad(z, GATE, PHI)
        if HAS_W:
            d = d * w_t[None, :, :]
        d = tl.where(bo_mask[:, :, None] & (kb[None, None, :] < n_i), d, 0.0)
        bo, bk = bb[:, None] * n_o + ob[None, :], bb[:, None] * n_i + kb[None, :]
        tl.store(part_u + pid_k * n_b * n_o + bo, tl.sum(d * v_t[:, None, :], axis=2), mask=bo_mask)
        tl.store(part_v + pid_o * n_b * n_i + bk, tl.sum(d * u_t[:, :, None], axis=1), mask=bk_mask)


def _check(*tensors: torch.Tensor) -> None:
    for t in tensors:
        if t.dtype != torch.float32 or not t.is_contiguous():
            raise ValueError(f"triton rank-1 kernels take contiguous float32 tensors, got {t.dtype} "
                             f"(contiguous: {t.is_contiguous()})")


def _blocks(n_out: int, n_in: int) -> tuple[int, int]:
    return triton.cdiv(n_out, BLOCKS["BLOCK_O"]), triton.cdiv(n_in, BLOCKS["BLOCK_K"])


def linear_forward(x, weight, u, v, gate: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(y (B, O), s (B,)): y_b = (W ⊙ gate(u_b v_bᵀ)) x_b, s_b = Σ|gate(u_b v_bᵀ)|;
    x (B, I), W (O, I)."""
    _check(x, weight, u, v)
    (batch, n_in), n_out = x.shape, weight.shape[0]
    y, abs_rows = x.new_empty(batch, n_out), x.new_empty(batch, n_out)
    grid = (_blocks(n_out, n_in)[0], triton.cdiv(batch, BLOCKS["BLOCK_B"]))
    _linear_forward_kernel[grid](x, weight, u, v, y, abs_rows, batch, n_out, n_in, GATE=GATE_CODES[gate],
                                 num_warps=NUM_WARPS, **BLOCKS)
    return y, abs_rows.sum(1)


def linear_backward(x, weight, u, v, gy, gs, gate: str) -> tuple[torch.Tensor, ...]:
    """(dx, dW, du, dv) of `linear_forward` given gy (B, O) and gs (B,)."""
    _check(x, weight, u, v, gy, gs)
    (batch, n_in), n_out = x.shape, weight.shape[0]
    grid = _blocks(n_out, n_in)
    gw = torch.empty_like(weight)
    part_x, part_v = x.new_empty(grid[0], batch, n_in), x.new_empty(grid[0], batch, n_in)
    part_u = x.new_empty(grid[1], batch, n_out)
    _linear_backward_kernel[grid](x, weight, u, v, gy, gs, gw, part_x, part_u, part_v, batch, n_out, n_in,
                                  GATE=GATE_CODES[gate], num_warps=NUM_WARPS, **BLOCKS)
    return part_x.sum(0), gw, part_u.sum(0), part_v.sum(0)


def mask_sum_forward(u, v, w, gate: str, kind: str) -> torch.Tensor:
    """(B,) Σ_i w_i φ(gate(u_b v_bᵀ))_i, φ = |.| or relu; w (O, I) or None (ones)."""
    _check(u, v, *([] if w is None else [w]))
    (batch, n_out), n_in = u.shape, v.shape[1]
    rows = u.new_empty(batch, n_out)
    grid = (_blocks(n_out, n_in)[0], triton.cdiv(batch, BLOCKS["BLOCK_B"]))
    _sum_forward_kernel[grid](u, v, u if w is None else w, rows, batch, n_out, n_in, HAS_W=w is not None,
                              GATE=GATE_CODES[gate], PHI=PHI_CODES[kind], num_warps=NUM_WARPS, **BLOCKS)
    return rows.sum(1)


def mask_sum_backward(u, v, w, gate: str, kind: str, gs) -> tuple[torch.Tensor, torch.Tensor]:
    """(du, dv) of `mask_sum_forward` given gs (B,)."""
    _check(u, v, gs, *([] if w is None else [w]))
    (batch, n_out), n_in = u.shape, v.shape[1]
    grid = _blocks(n_out, n_in)
    part_u, part_v = u.new_empty(grid[1], batch, n_out), u.new_empty(grid[0], batch, n_in)
    _sum_backward_kernel[grid](u, v, u if w is None else w, gs, part_u, part_v, batch, n_out, n_in,
                               HAS_W=w is not None, GATE=GATE_CODES[gate], PHI=PHI_CODES[kind],
                               num_warps=NUM_WARPS, **BLOCKS)
    return part_u.sum(0), part_v.sum(0)
