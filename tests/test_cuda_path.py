"""The CUDA path of DWA's masked layers, checked on the CPU (no GPU needed).

* The Triton kernels (kernels/triton_rank_one.py) run under Triton's interpreter
  (TRITON_INTERPRET=1, CPU tensors) in a subprocess, because the variable must be set before the
  kernels are defined: the layer, its mask-loss sums and a small DWA AlexNet end to end, against the
  float64 reference formulation (materialised masks, autograd).
* The compiled formulation (kernels/formula.py under torch.compile / Inductor) against the same.
* The torch.library operators: schema, fake tensors and autograd (`opcheck`), gradients
  (`gradcheck`), and a whole layer under torch.compile(fullgraph=True) seeing one operator.
* The convolutional (full-mask) path and the operator path dispatch the same operations for any
  batch size: batched, no per-sample loop.

"rel" is ||a - b|| / ||b|| over a whole output or gradient."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from dwa_core.functional.dwa_masks import plasticity_loss, sparsity_loss, weighted_sum
from dwa_core.models import build
from dwa_core.models.dwa import DWAState
from dwa_core.models.kernels import formula, ops
from dwa_core.models.masked import FullMask, MaskedConv2d, MaskedLinear, RankOneMask, factors_aligned

ROOT = Path(__file__).resolve().parents[1]
GATES = ("tanh", "sigmoid")
LAYER_OUTPUTS = ["y", "s", "dx", "dW", "du", "dv"]
SUMS = [(gate, kind, weighted) for gate in GATES for kind in ("abs", "relu") for weighted in (False, True)]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


def reference_layer(x, weight, u, v, gy, gs, gate):
    """y, s and (dx, dW, du, dv) of L = Σ gy·y + Σ gs·s by float64 autograd through the materialised
    mask."""
    xs = [t.detach().double().requires_grad_() for t in (x, weight, u, v)]
    h = RankOneMask(xs[2], xs[3], gate, tuple(weight.shape)).materialise()  # (B, O, I)
    y = torch.bmm(xs[1] * h, xs[0][:, :, None]).squeeze(-1)
    s = h.abs().flatten(1).sum(1)
    grads = torch.autograd.grad((y * gy.double()).sum() + (s * gs.double()).sum(), xs)
    return [y, s, *grads]


def reference_sum(u, v, w, gs, gate, kind):
    """S_b = Σ_i w_i φ(H_bi) and (du, dv) of Σ gs·S, float64 autograd."""
    uu, vv = u.detach().double().requires_grad_(), v.detach().double().requires_grad_()
    h = RankOneMask(uu, vv, gate, (u.shape[1], v.shape[1])).materialise()
    phi = h.abs() if kind == "abs" else torch.relu(h)
    total = (phi if w is None else phi * w.double()).flatten(1).sum(1)
    return [total, *torch.autograd.grad((total * gs.double()).sum(), (uu, vv))]


def layer_inputs(seed=0, batch=3, n_out=37, n_in=29):
    """Odd sizes: every tile of the kernels is partly masked."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g) for shape in
            [(batch, n_in), (n_out, n_in), (batch, n_out), (batch, n_in), (batch, n_out), (batch,)]]


# ---- the Triton kernels under the interpreter (run in a subprocess, see `interpreted_report`) ----

def interpreted_report() -> dict[str, float]:
    """rel errors of the Triton path against float64 references; run with TRITON_INTERPRET=1 and
    DWA_CORE_RANK_ONE=triton (every rank-1 layer and mask sum goes through the operators)."""
    from dwa_core.models.kernels import triton_rank_one as kernels
    assert ops.backend_name(torch.ones(1)) == "triton"
    report = {}
    x, weight, u, v, gy, gs = layer_inputs()
    for gate in GATES:  # the launchers
        got = [*kernels.linear_forward(x, weight, u, v, gate),
               *kernels.linear_backward(x, weight, u, v, gy, gs, gate)]
        for name, a, b in zip(LAYER_OUTPUTS, got, reference_layer(x, weight, u, v, gy, gs, gate)):
            report[f"kernel {gate} {name}"] = rel(a, b)
    fisher = torch.rand(weight.shape, generator=torch.Generator().manual_seed(1))
    for gate, kind, weighted in SUMS:
        w = fisher if weighted else None
        got = [kernels.mask_sum_forward(u, v, w, gate, kind),
               *kernels.mask_sum_backward(u, v, w, gate, kind, gs)]
        for name, a, b in zip(["S", "du", "dv"], got, reference_sum(u, v, w, gs, gate, kind)):
            report[f"sum {gate} {kind} w={weighted} {name}"] = rel(a, b)
    report.update(network_report())
    return report


def network_report() -> dict[str, float]:
    """A small DWA MLP (1x5x8 input, masked dense layers 40 -> 40 -> 40: square, so both rank-1
    masks line up with their weights and go through the operator; 40 leaves partial tiles), batch 3:
    outputs, both mask losses and every gradient, the current path (float32) against the reference
    formulation in float64."""
    torch.manual_seed(0)
    nets = [build("mlp", "dwa", (1, 5, 8), [3, 2], params=dict(hidden=40, emb_size=5, masked_impl=impl))
            for impl in ("fast", "reference")]
    nets[1].load_state_dict(nets[0].state_dict())
    nets[1].double()
    x = torch.randn(3, 1, 5, 8)
    masked = nets[0].masked_weight_names()
    fisher = {n: torch.rand_like(p) for n, p in nets[0].named_parameters() if n in masked}
    results = []
    for net in nets:
        out = net(x.to(next(net.parameters()).dtype), 1)
        state = net.state
        if net is nets[1]:
            state = DWAState(state.embedding, {n: FullMask(m.materialise()) for n, m in state.masks.items()})
        # μ = 0: the sparsity term is active (with tanh masks mean |H| is often below 0.1)
        terms = [out.pow(2).mean(), plasticity_loss(state, fisher), sparsity_loss(state, 0.0)]
        sum(terms).backward()
        results.append([out, *terms, *(p.grad for p in net.parameters())])
    params = dict(nets[0].named_parameters())
    for name in ("fc1.weight", "fc2.weight"):
        assert factors_aligned(params[name], nets[0].state.masks[name]), name
    grads = [f"grad {n}" for n, _ in nets[0].named_parameters()]
    names = ["out", "squares", "plasticity", "sparsity", *grads]
    return {f"network {n}": rel(a, b) for n, a, b in zip(names, *results) if b is not None and b.norm() > 0}


def test_triton_kernels_match_float64_under_the_interpreter():
    pytest.importorskip("triton", reason="Triton is not installed")
    env = {**os.environ, "TRITON_INTERPRET": "1", "DWA_CORE_RANK_ONE": "triton", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, __file__], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(report) > 40 and any(k.startswith("network grad fc2.weight") for k in report)
    bad = {k: v for k, v in report.items() if not v < 1e-5}
    assert not bad, bad


# ---- the compiled formulation under Inductor ----

def _all_formulas(x, weight, u, v, gy, gs, fisher):
    """Every formula, in one function so that Inductor compiles (and builds C++) once: a cold
    compile is most of this test's time."""
    out = {}
    for gate in GATES:
        out[f"{gate} layer"] = [*formula.linear_forward(x, weight, u, v, gate),
                                *formula.linear_backward(x, weight, u, v, gy, gs, gate)]
    for gate, kind, weighted in (("tanh", "relu", True), ("sigmoid", "abs", False)):
        w = fisher if weighted else None
        out[f"{gate} {kind} sum"] = [formula.mask_sum_forward(u, v, w, gate, kind),
                                     *formula.mask_sum_backward(u, v, w, gate, kind, gs)]
    return out


def test_compiled_formulation_matches_float64_under_inductor():
    if shutil.which(os.environ.get("CXX", "g++")) is None and shutil.which("c++") is None:
        pytest.skip("Inductor needs a C++ compiler on the CPU; none found")
    x, weight, u, v, gy, gs = (t.double() for t in layer_inputs(seed=2))
    fisher = torch.rand(weight.shape, dtype=torch.float64)
    torch._dynamo.reset()
    got = torch.compile(_all_formulas, backend="inductor", fullgraph=True)(x, weight, u, v, gy, gs, fisher)
    for gate in GATES:
        for name, a, b in zip(LAYER_OUTPUTS, got[f"{gate} layer"],
                              reference_layer(x, weight, u, v, gy, gs, gate)):
            assert rel(a, b) < 1e-5, (gate, name)
    for gate, kind, weighted in (("tanh", "relu", True), ("sigmoid", "abs", False)):
        for name, a, b in zip(["S", "du", "dv"], got[f"{gate} {kind} sum"],
                              reference_sum(u, v, fisher if weighted else None, gs, gate, kind)):
            assert rel(a, b) < 1e-5, (gate, kind, name)


# ---- the operators ----

@pytest.mark.parametrize("backend", ["chunked", "kernel"])
def test_operators_pass_opcheck_and_match_the_reference(backend, monkeypatch):
    monkeypatch.setenv("DWA_CORE_RANK_ONE", backend)
    dtype = torch.float64 if backend == "chunked" else torch.float32
    x, weight, u, v, gy, gs = (t.to(dtype) for t in layer_inputs(seed=3, batch=2, n_out=5, n_in=4))
    if backend == "kernel" and not ops.kernels.applies(x):
        pytest.skip(f"C kernel unavailable: {ops.kernels.unavailable_reason()}")
    leaves = [t.clone().requires_grad_() for t in (x, weight, u, v)]
    torch.library.opcheck(torch.ops.dwa_core.rank_one_linear.default, (*leaves, "sigmoid"))
    torch.library.opcheck(torch.ops.dwa_core.rank_one_mask_sum.default,
                          (leaves[2], leaves[3], weight, "tanh", "relu"))
    y, s = ops.rank_one_linear(*leaves, "tanh")
    got = [y, s, *torch.autograd.grad((y * gy).sum() + (s * gs).sum(), leaves)]
    for name, a, b in zip(LAYER_OUTPUTS, got, reference_layer(x, weight, u, v, gy, gs, "tanh")):
        assert rel(a, b) < 1e-5, name
    if dtype == torch.float64:
        mask_sum = lambda a, b: ops.rank_one_mask_sum(a, b, None, "tanh", "abs")
        assert torch.autograd.gradcheck(mask_sum, leaves[2:])


def test_backend_selection(monkeypatch):
    """CUDA float32 -> Triton (tensors stood in for: no GPU here); other dtypes -> the chunked
    formulation; the CPU keeps the layers' own Functions unless a backend is forced; bad names fail."""
    monkeypatch.delenv("DWA_CORE_RANK_ONE", raising=False)
    cuda = {dtype: SimpleNamespace(dtype=dtype, is_cuda=True, device=torch.device("cuda"))
            for dtype in (torch.float32, torch.float64)}
    if ops.triton_backend() is not None:
        assert ops.backend_name(cuda[torch.float32], cuda[torch.float32]) == "triton"
    assert ops.backend_name(cuda[torch.float64]) == "chunked" and ops.used_for(cuda[torch.float32])
    monkeypatch.setenv("DWA_CORE_RANK_ONE", "cuda-magic")
    with pytest.raises(ValueError, match="DWA_CORE_RANK_ONE: must be one of triton"):
        ops.backend_name(torch.ones(1))
    monkeypatch.setenv("DWA_CORE_RANK_ONE", "none")
    assert not ops.used_for(torch.ones(1)) and ops.backend_name(torch.ones(1)) in ("kernel", "chunked")
    monkeypatch.delenv("DWA_CORE_RANK_ONE")
    assert not ops.used_for(torch.ones(1))  # the CPU default stays the layer's own C-kernel Function
    assert ops.backend_name(torch.ones(1, dtype=torch.float64)) == "chunked"
    monkeypatch.setenv("DWA_CORE_RANK_ONE", "compiled")
    assert ops.used_for(torch.ones(1)) and ops.backend_name(torch.ones(1)) == "compiled"


def test_compiled_layer_sees_one_operator(monkeypatch):
    """torch.compile(fullgraph=True) of a masked layer: no graph break, the operator in the graph,
    and the same output and gradients as eager."""
    monkeypatch.setenv("DWA_CORE_RANK_ONE", "chunked")
    torch.manual_seed(4)
    layer = MaskedLinear(6, 5).double()
    x, u, v = torch.randn(3, 6).double(), torch.randn(3, 5).double(), torch.randn(3, 6).double()
    graphs = []

    def capture(gm, example_inputs):
        graphs.append(gm)
        return gm

    def loss(module, x, u, v):
        mask = RankOneMask(u, v, "tanh", (5, 6))
        return module(x, mask).pow(2).sum() + weighted_sum(mask, None, "abs").sum()

    torch._dynamo.reset()
    compiled = torch.compile(loss, backend=capture, fullgraph=True)
    leaves = [t.clone().requires_grad_() for t in (x, u, v)]
    grads = torch.autograd.grad(compiled(layer, *leaves), [*leaves, layer.weight])
    code = "\n".join(g.code for g in graphs)
    assert "dwa_core.rank_one_linear" in code and "dwa_core.rank_one_mask_sum" in code
    leaves_ref = [t.clone().requires_grad_() for t in (x, u, v)]
    ref_layer = _reference_copy(layer)
    mask = RankOneMask(leaves_ref[1], leaves_ref[2], "tanh", (5, 6))
    ref = ref_layer(leaves_ref[0], mask).pow(2).sum() + mask.materialise().abs().flatten(1).sum(1).sum()
    for a, b in zip(grads, torch.autograd.grad(ref, [*leaves_ref, ref_layer.weight])):
        assert rel(a, b) < 1e-10


def test_compiled_network_is_one_graph_with_an_operator_per_layer(monkeypatch):
    """torch.compile(fullgraph=True) of a DWA network's forward and mask losses: one graph, the
    layer operator once per rank-1 layer, and the eager gradients."""
    monkeypatch.setenv("DWA_CORE_RANK_ONE", "chunked")
    torch.manual_seed(5)
    net = build("mlp", "dwa", (1, 5, 8), [3, 2], params=dict(hidden=40, emb_size=5)).double()
    x = torch.randn(3, 1, 5, 8, dtype=torch.float64)
    fisher = {n: torch.rand_like(p) for n, p in net.named_parameters() if n in net.masked_weight_names()}
    graphs = []

    def capture(gm, example_inputs):
        graphs.append(gm)
        return gm

    def loss(x):
        out = net(x, 1)
        return out.pow(2).mean() + plasticity_loss(net.state, fisher) + sparsity_loss(net.state, 0.0)

    torch._dynamo.reset()
    torch.compile(loss, backend=capture, fullgraph=True)(x).backward()
    compiled = [None if p.grad is None else p.grad.clone() for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    loss(x).backward()
    assert len(graphs) == 1 and graphs[0].code.count("torch.ops.dwa_core.rank_one_linear") == 2
    for a, p in zip(compiled, net.parameters()):
        assert (a is None) == (p.grad is None)
        if a is not None and p.grad.norm() > 0:
            assert rel(a, p.grad) < 1e-10


def _reference_copy(layer: MaskedLinear) -> MaskedLinear:
    ref = MaskedLinear(layer.weight.shape[1], layer.weight.shape[0], impl="reference").to(layer.weight.dtype)
    ref.load_state_dict(layer.state_dict())
    return ref


# ---- batched, no per-sample loop ----

class CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


def _dispatched(fn, batch: int) -> list[str]:
    with CountOps() as counter:
        fn(batch)
    return counter.ops


def test_conv_and_operator_paths_dispatch_the_same_ops_for_any_batch(monkeypatch):
    """The work a layer sends to the device does not grow with the batch: the full-mask conv is
    one bmm (im2col), the rank-1 layer one operator; the per-sample Function (the old CUDA path)
    is shown to grow, so the check can fail."""
    conv = MaskedConv2d(3, 4, 3)

    def conv_step(batch):
        conv.zero_grad(set_to_none=True)
        x, h = torch.randn(batch, 3, 6, 6), torch.rand(batch, 4, 3, 3, 3, requires_grad=True)
        conv(x, FullMask(h)).sum().backward()

    def linear_step(impl):
        layer = MaskedLinear(7, 5, impl=impl)

        def step(batch):
            u = torch.randn(batch, 5, requires_grad=True)
            mask = RankOneMask(u, torch.randn(batch, 7), "tanh", (5, 7))
            (layer(torch.randn(batch, 7), mask).sum() + mask.abs_sum.sum()).backward()
        return step

    conv_ops = _dispatched(conv_step, 2)
    assert conv_ops == _dispatched(conv_step, 9) and "aten.bmm" in conv_ops
    monkeypatch.setenv("DWA_CORE_RANK_ONE", "kernel" if ops.kernels.applies(torch.ones(1)) else "chunked")
    op_ops = _dispatched(linear_step("fast"), 2)
    assert op_ops == _dispatched(linear_step("fast"), 9)
    assert "dwa_core.rank_one_linear" in op_ops and "dwa_core.rank_one_linear_backward" in op_ops
    monkeypatch.delenv("DWA_CORE_RANK_ONE")
    assert len(_dispatched(linear_step("torch"), 9)) > len(_dispatched(linear_step("torch"), 2))


if __name__ == "__main__":  # the subprocess of test_triton_kernels_match_float64_under_the_interpreter
    print(json.dumps(interpreted_report()))
