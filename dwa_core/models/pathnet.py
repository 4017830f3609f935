"""PathNet (Fernando et al. 2017) as in the original code's alexnet_pathnet (docs/original-code.md#approaches,
#networks).

L layers of M modules each; a path picks N modules per layer (an (L, N) table of module ids, repeats
allowed) and a layer's output is the sum of its active modules' outputs. AlexNet modules have widths
int(0.258 * {64, 128, 256, 2048, 2048}) = 16, 33, 66, 528, 528, each module being conv/linear ->
ReLU -> dropout (-> maxpool). The MLP variant has 3 layers of modules of width int(0.258 * 800) = 206.

`forward(x, t, path=None)` uses `path`, or else the path stored for task t in `task_paths` (set by
the approach), or else modules 0..N-1 of every layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dwa_core.coerce import DropRate, PositiveFloat, Size
from dwa_core.models.heads import MultiHead
from dwa_core.models.plain import alexnet_kernel_sizes
from dwa_core.models.registry import NETWORKS

WIDTH_FACTOR = 0.258


class PathNet(nn.Module):
    """`layers[l][m]` is module m of layer l; heads under `last`."""

    def __init__(self, layers: list[list[nn.Module]], out_features: int, task_classes, active: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.ModuleList(mods) for mods in layers)
        self.n_modules = len(layers[0])
        self.n_active = active
        if not 1 <= active <= self.n_modules:
            raise ValueError(f"active: must be in 1..modules ({self.n_modules}), got {active}")
        self.last = MultiHead(out_features, task_classes)
        self.task_paths: dict[int, tuple[tuple[int, ...], ...]] = {}

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def default_path(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(range(self.n_active)) for _ in self.layers)

    def forward(self, x: torch.Tensor, t, path=None) -> torch.Tensor:
        if torch.is_tensor(t):
            raise ValueError("PathNet needs one task id per batch (an int)")
        path = path if path is not None else self.task_paths.get(t, self.default_path())
        h = x
        for layer, active in zip(self.layers, path):
            h = sum(layer[m](h) for m in active)
        return self.last(h, t)


class AlexNetPathNet(PathNet):
    """5 layers (conv x3, fc x2) of M modules, widths int(0.258 * {64, 128, 256, 2048, 2048})."""

    def __init__(self, input_shape, task_classes, modules: Size = 16, active: Size = 3,
                 width_factor: PositiveFloat = WIDTH_FACTOR, dropout: bool = True):
        channels, size, _ = input_shape
        w = [int(width_factor * c) for c in (64, 128, 256, 2048, 2048)]
        p_small, p_large = (0.2, 0.5) if dropout else (0.0, 0.0)
        layers, c_in, spatial = [], channels, size
        for c_out, k, p in zip(w[:3], alexnet_kernel_sizes(size), (p_small, p_small, p_large)):
            layers.append([nn.Sequential(nn.Conv2d(c_in, c_out, k), nn.ReLU(), nn.Dropout(p),
                                         nn.MaxPool2d(2)) for _ in range(modules)])
            c_in, spatial = c_out, (spatial - k + 1) // 2
        width = c_in * spatial * spatial
        for i, units in enumerate(w[3:]):
            first = [nn.Flatten()] if i == 0 else []
            layers.append([nn.Sequential(*first, nn.Linear(width, units), nn.ReLU(), nn.Dropout(p_large))
                           for _ in range(modules)])
            width = units
        super().__init__(layers, width, task_classes, active)


class MLPPathNet(PathNet):
    """`layers` linear layers of M modules of width `hidden` (default int(0.258 * 800) = 206)."""

    def __init__(self, input_shape, task_classes, modules: Size = 16, active: Size = 3,
                 hidden: Size | None = None, layers: Size = 3, dropout: DropRate = 0.5):
        hidden = hidden or int(WIDTH_FACTOR * 800)
        mods, width = [], math.prod(input_shape)
        for i in range(layers):
            first = [nn.Flatten()] if i == 0 else []
            mods.append([nn.Sequential(*first, nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout))
                         for _ in range(modules)])
            width = hidden
        super().__init__(mods, width, task_classes, active)


NETWORKS.register("alexnet-pathnet")(AlexNetPathNet)
NETWORKS.register("mlp-pathnet")(MLPPathNet)
