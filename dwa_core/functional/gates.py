"""The gates that turn DWA's mask generator outputs into masks H (paper §3.2; tanh: §4.3): tanh (the paper's
choice, H in (-1, 1)) or sigmoid (the original code's `--sigmoid` option, H in (0, 1))."""

from __future__ import annotations

from typing import Literal, get_args

import torch

Gate = Literal["tanh", "sigmoid"]
GATES = get_args(Gate)


def gate_fn(name: str):
    """torch.tanh or torch.sigmoid. Raises ValueError for another name."""
    if name not in GATES:
        raise ValueError(f"gate: must be one of {', '.join(GATES)}, got {name!r}")
    return torch.tanh if name == "tanh" else torch.sigmoid


def gate_(name: str, m: torch.Tensor) -> torch.Tensor:
    """The gate applied in place to m (which it returns): for reused buffers in per-sample loops."""
    return m.tanh_() if name == "tanh" else m.sigmoid_()
