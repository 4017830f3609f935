"""The plain networks of docs/original-code.md#networks: the MLP of the MNIST experiments and the paper's
AlexNet."""

from __future__ import annotations

import math
from typing import Annotated

import torch
from torch import nn

from dwa_core.coerce import DropRate, Size
from dwa_core.fields import Spec
from dwa_core.models.heads import MultiHead


class MLP(nn.Module):
    """flatten -> [Linear(hidden) -> ReLU -> Dropout] x layers -> a head per task."""

    def __init__(self, input_shape, task_classes,
                 hidden: Annotated[Size, Spec("units per hidden layer", "original mlp")] = 800,
                 layers: Annotated[Size, Spec("number of hidden layers", "original mlp")] = 3,
                 dropout: Annotated[DropRate, Spec("dropout after each hidden layer", "original mlp")] = 0.5):
        super().__init__()
        blocks, width = [], math.prod(input_shape)
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        self.features = nn.Sequential(nn.Flatten(), *blocks)
        self.last = MultiHead(width, task_classes)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        return self.last(self.features(x), t)


def alexnet_kernel_sizes(size: int) -> tuple[int, int, int]:
    """The original code's kernel sizes depend on the input size: size//8, size//10, 2 (4, 3, 2 at 32)."""
    return size // 8, size // 10, 2


class AlexNet(nn.Module):
    """conv64 k4 / conv128 k3 / conv256 k2, each ReLU -> dropout -> maxpool2; fc2048 x 2; heads.
    Dropout 0.2 after conv1-2 and 0.5 after conv3, fc1, fc2 (docs/original-code.md#networks)."""

    def __init__(self, input_shape, task_classes, dropout: bool = True, fc_units: Size = 2048):
        super().__init__()
        channels, size, _ = input_shape
        k1, k2, k3 = alexnet_kernel_sizes(size)
        p_small, p_large = (0.2, 0.5) if dropout else (0.0, 0.0)
        convs, spatial = [], size
        for c_in, c_out, k, p in ((channels, 64, k1, p_small), (64, 128, k2, p_small),
                                  (128, 256, k3, p_large)):
            convs += [nn.Conv2d(c_in, c_out, k), nn.ReLU(), nn.Dropout(p), nn.MaxPool2d(2)]
            spatial = (spatial - k + 1) // 2
        self.features = nn.Sequential(
            *convs, nn.Flatten(),
            nn.Linear(256 * spatial * spatial, fc_units), nn.ReLU(), nn.Dropout(p_large),
            nn.Linear(fc_units, fc_units), nn.ReLU(), nn.Dropout(p_large),
        )
        self.last = MultiHead(fc_units, task_classes)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        return self.last(self.features(x), t)
