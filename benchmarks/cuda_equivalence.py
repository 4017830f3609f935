"""The paper-size DWA AlexNet on one device: the fast path (float32) against the reference
formulation in float64 (materialised per-sample weights and masks), for both gates.

    PYTHONPATH=. python benchmarks/cuda_equivalence.py [--device cuda] [--batch 4]

On CUDA the fast path is the Triton operators (dwa_core/models/kernels/ops.py); on the CPU the C
kernels. Prints the relative error ||a - b|| / ||b|| of the output, the plasticity and sparsity
terms and every parameter's gradient, and exits 1 if any exceeds 1e-5 (the tests' tolerance)."""

from __future__ import annotations

import argparse
import sys

import torch

from dwa_core.functional.dwa_masks import plasticity_loss, sparsity_loss
from dwa_core.models import build
from dwa_core.models.dwa import DWAState
from dwa_core.models.kernels import ops
from dwa_core.models.masked import FullMask

MIXTURE = [100, 10, 100, 10, 10, 10, 43, 10]
TOLERANCE = 1e-5


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


def run(net, x, fisher, materialise: bool) -> list[torch.Tensor]:
    """Output, the three loss terms and every gradient of one forward/backward pass."""
    out = net(x, 2)
    state = net.state
    if materialise:
        state = DWAState(state.embedding, {n: FullMask(m.materialise()) for n, m in state.masks.items()})
    # μ = 0: the sparsity term is active (with tanh masks mean |H| is often below 0.1)
    terms = [out.pow(2).mean(), plasticity_loss(state, fisher), sparsity_loss(state, 0.0)]
    sum(terms).backward()
    return [out, *terms, *(p.grad for p in net.parameters())]


def compare(gate: str, device: str, batch: int) -> dict[str, float]:
    """rel. error per tensor (output, loss terms, gradients): the default network against its
    float64 reference copy."""
    torch.manual_seed(0)
    fast = build("alexnet", "dwa", (3, 32, 32), MIXTURE, params={"gate": gate}).to(device)
    ref = build("alexnet", "dwa", (3, 32, 32), MIXTURE, params={"gate": gate, "masked_impl": "reference"})
    ref.load_state_dict(fast.state_dict())
    ref.to(device, torch.float64)
    x = torch.randn(batch, 3, 32, 32, device=device)
    fisher = {n: torch.rand_like(p) for n, p in fast.named_parameters() if n in fast.masked_weight_names()}
    grads = [f"grad {n}" for n, _ in fast.named_parameters()]
    names = ["output", "squares", "plasticity", "sparsity", *grads]
    pairs = zip(names, run(fast, x, fisher, False), run(ref, x.double(), fisher, True))
    return {name: rel(a, b) for name, a, b in pairs if b is not None and b.norm() > 0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    probe = torch.ones(1, device=args.device)
    path = ops.backend_name(probe) if ops.used_for(probe) else "the layers' CPU Functions (C kernels)"
    print(f"device {args.device}: fast path = {path}; batch {args.batch}; tolerance {TOLERANCE:g}")
    worst = 0.0
    for gate in ("tanh", "sigmoid"):
        errors = compare(gate, args.device, args.batch)
        name, err = max(errors.items(), key=lambda item: item[1])
        worst = max(worst, err)
        print(f"{gate:8s} {len(errors)} tensors, largest rel. error {err:.2e} ({name}); "
              + ", ".join(f"{k} {v:.1e}" for k, v in list(errors.items())[:4]))
    print("OK" if worst <= TOLERANCE else "FAILED")
    sys.exit(0 if worst <= TOLERANCE else 1)


if __name__ == "__main__":
    main()
