"""The signal of the DWA AlexNet at initialisation, against the plain AlexNet.

Prints, for one batch of 16 N(0, 1) images at 3x32x32 (eval mode, seed 0), the std of each layer's
pre-activation output and the gradient norm of each layer's weight for Σ logits, for the plain
AlexNet and for DWA with each gate and `mask_start`. The table of docs/dwa-initial-signal.md.

    python benchmarks/dwa_initial_signal.py
"""

from __future__ import annotations

import torch
from torch import nn

from dwa_core import models

SHAPE, CLASSES = (3, 32, 32), [10, 10]
VARIANTS = [("tanh", None), ("sigmoid", None), ("tanh", 0.9), ("tanh", 0.2)]


def measure(model: nn.Module, layers: list[nn.Module], x: torch.Tensor) -> tuple[list[float], list[float]]:
    """(std of each layer's output, norm of each layer's weight gradient) for Σ logits of task 0."""
    stds = [0.0] * len(layers)
    hooks = [layer.register_forward_hook(lambda _m, _i, out, k=k: stds.__setitem__(k, out.std().item()))
             for k, layer in enumerate(layers)]
    model.eval()(x, 0).sum().backward()
    for hook in hooks:
        hook.remove()
    return stds, [layer.weight.grad.norm().item() for layer in layers]


def main() -> None:
    torch.manual_seed(0)
    x = torch.randn(16, *SHAPE)
    plain = models.build("alexnet", "plain", SHAPE, CLASSES)
    plain_layers = [m for m in plain.features if isinstance(m, (nn.Conv2d, nn.Linear))]
    rows = [("plain AlexNet", *measure(plain, plain_layers, x))]
    for gate, start in VARIANTS:
        dwa = models.build("alexnet", "dwa", SHAPE, CLASSES, {"gate": gate, "mask_start": start})
        rows.append((f"DWA {gate}, mask_start={start}",
                     *measure(dwa, [getattr(dwa, n) for n in ("c1", "c2", "c3", "fc1", "fc2")], x)))
    print(f"{'network':32s} output std c1 / c2 / c3 / fc1 / fc2 | weight-gradient norm c1 / fc2")
    for name, stds, grads in rows:
        print(f"{name:32s} {' / '.join(f'{s:.3g}' for s in stds)} | {grads[0]:.2g} / {grads[-1]:.2g}")


if __name__ == "__main__":
    main()
