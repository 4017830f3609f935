"""The rank-1 masked layer of DWA and its mask sums written as tensor expressions, forward and
backward by hand (the formulas of rank_one.c's header), for any device and dtype.

Read eagerly, each expression builds the (B, O, I) mask H = gate(u vᵀ): `chunked` evaluates them a
few samples at a time so that memory stays bounded. Under `torch.compile` (Inductor), the gate and
the products are fused into the reductions that consume them and H is never stored: on CUDA
Inductor emits Triton, on the CPU C++. `compiled` holds those compiled versions."""

from __future__ import annotations

import functools

import torch

CHUNK_ELEMENTS = 1 << 22  # entries of one (chunk, O, I) temporary in `chunked` (16 MB in float32)


def _gate(gate: str, z: torch.Tensor) -> torch.Tensor:
    return torch.tanh(z) if gate == "tanh" else torch.sigmoid(z)


def _gate_grad(gate: str, h: torch.Tensor) -> torch.Tensor:
    return 1 - h * h if gate == "tanh" else h * (1 - h)


def _phi(kind: str, h: torch.Tensor) -> torch.Tensor:
    return h.abs() if kind == "abs" else torch.relu(h)


def _phi_grad(gate: str, kind: str, z: torch.Tensor) -> torch.Tensor:
    """φ'(H) as a function of z: sign(H) for |.|, [H > 0] for relu (sign(H) = sign(z) for tanh;
    H > 0 for sigmoid)."""
    if gate == "sigmoid":
        return torch.ones_like(z)
    return torch.sign(z) if kind == "abs" else (z > 0).to(z.dtype)


def linear_forward(x, weight, u, v, gate: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(y (B, O), s (B,)): y_b = (W ⊙ H_b) x_b, s_b = Σ|H_b|, H_b = gate(u_b v_bᵀ);
    x (B, I), W (O, I)."""
    h = _gate(gate, u[:, :, None] * v[:, None, :])  # (B, O, I)
    return (h * weight * x[:, None, :]).sum(2), h.abs().sum(2).sum(1)


def linear_backward(x, weight, u, v, gy, gs, gate: str) -> tuple[torch.Tensor, ...]:
    """(dx, dW, du, dv) of `linear_forward` given gy (B, O) and gs (B,);
    G = gate'(H) ⊙ (W ⊙ gy_b x_bᵀ + gs_b sign(H))."""
    z = u[:, :, None] * v[:, None, :]  # (B, O, I)
    h = _gate(gate, z)
    gyx = gy[:, :, None] * x[:, None, :]
    g = _gate_grad(gate, h) * (weight * gyx + gs[:, None, None] * _phi_grad(gate, "abs", z))
    return ((weight * h * gy[:, :, None]).sum(1), (h * gyx).sum(0),
            (g * v[:, None, :]).sum(2), (g * u[:, :, None]).sum(1))


def mask_sum_forward(u, v, w, gate: str, kind: str) -> torch.Tensor:
    """(B,) Σ_i w_i φ(gate(u_b v_bᵀ))_i, φ = |.| or relu; w (O, I) or None (ones)."""
    val = _phi(kind, _gate(gate, u[:, :, None] * v[:, None, :]))  # (B, O, I)
    return (val if w is None else val * w).sum(2).sum(1)


def mask_sum_backward(u, v, w, gate: str, kind: str, gs) -> tuple[torch.Tensor, torch.Tensor]:
    """(du, dv) of `mask_sum_forward` given gs (B,)."""
    z = u[:, :, None] * v[:, None, :]  # (B, O, I)
    d = gs[:, None, None] * _gate_grad(gate, _gate(gate, z)) * _phi_grad(gate, kind, z)
    d = d if w is None else d * w
    return (d * v[:, None, :]).sum(2), (d * u[:, :, None]).sum(1)


def _step(per_sample: int, batch: int) -> int:
    return max(1, min(batch, CHUNK_ELEMENTS // max(per_sample, 1)))


class chunked:
    """The formulas evaluated `CHUNK_ELEMENTS // (O·I)` samples at a time (eager, any device)."""

    @staticmethod
    def linear_forward(x, weight, u, v, gate):
        step = _step(weight.numel(), x.shape[0])
        parts = [linear_forward(x[s:s + step], weight, u[s:s + step], v[s:s + step], gate)
                 for s in range(0, x.shape[0], step)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    @staticmethod
    def linear_backward(x, weight, u, v, gy, gs, gate):
        step, gw = _step(weight.numel(), x.shape[0]), torch.zeros_like(weight)
        gx, gu, gv = [], [], []
        for s in range(0, x.shape[0], step):
            rows = slice(s, s + step)
            dx, dw, du, dv = linear_backward(x[rows], weight, u[rows], v[rows], gy[rows], gs[rows], gate)
            gw += dw
            gx.append(dx), gu.append(du), gv.append(dv)
        return torch.cat(gx), gw, torch.cat(gu), torch.cat(gv)

    @staticmethod
    def mask_sum_forward(u, v, w, gate, kind):
        step = _step(u.shape[1] * v.shape[1], u.shape[0])
        return torch.cat([mask_sum_forward(u[s:s + step], v[s:s + step], w, gate, kind)
                          for s in range(0, u.shape[0], step)])

    @staticmethod
    def mask_sum_backward(u, v, w, gate, kind, gs):
        step = _step(u.shape[1] * v.shape[1], u.shape[0])
        parts = [mask_sum_backward(u[s:s + step], v[s:s + step], w, gate, kind, gs[s:s + step])
                 for s in range(0, u.shape[0], step)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


@functools.cache
def _compiled(fn):
    return torch.compile(fn, fullgraph=True, dynamic=False)


class compiled:
    """The formulas compiled whole by torch.compile (Inductor): no (B, O, I) tensor is stored."""

    @staticmethod
    def linear_forward(x, weight, u, v, gate):
        return _compiled(linear_forward)(x, weight, u, v, gate)

    @staticmethod
    def linear_backward(x, weight, u, v, gy, gs, gate):
        return _compiled(linear_backward)(x, weight, u, v, gy, gs, gate)

    @staticmethod
    def mask_sum_forward(u, v, w, gate, kind):
        return _compiled(mask_sum_forward)(u, v, w, gate, kind)

    @staticmethod
    def mask_sum_backward(u, v, w, gate, kind, gs):
        return _compiled(mask_sum_backward)(u, v, w, gate, kind, gs)
