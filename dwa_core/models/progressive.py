"""Progressive networks (Rusu et al. 2016) as in the original code's alexnet_progressive
(docs/original-code.md#approaches, #networks).

One column per task. Column j's layer l (l >= 1, not the input layer) also receives a lateral
adapter from the layer-(l-1) activations of every earlier column i < j:

    a_l^j = U( ReLU( V( concat_i  alpha_i * h_{l-1}^i ) ) )      added to the pre-activation of layer l,

with V a 1x1 conv (or a linear layer) back to one column's width, alpha a learnable scalar per
earlier column (the original code's `Embedding(1, t)`; initialised to 1 here) and U shaped like layer l.

Widths: AlexNet int(1.117 * {64, 128, 256, 2048, 2048} / T); MLP int(1.117 * 800 / T) per hidden
layer (3 layers, the MLP's 800 scaled like AlexNet's so T columns cost about one plain network).

The original code also built adapters into the heads, but they only act when an older head tid < t is read
from column t, which never happens for head t: they are dead code and are not reproduced.
`forward(x, t)` computes columns 0..t only, and earlier columns only up to the layer column t reads.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dwa_core.coerce import DropRate, PositiveFloat, Size
from dwa_core.models.heads import MultiHead
from dwa_core.models.plain import alexnet_kernel_sizes
from dwa_core.models.registry import NETWORKS

WIDTH_FACTOR = 1.117  # original code: the columns together have about the parameters of one AlexNet


class Lateral(nn.Module):
    """U(ReLU(V(concat_i alpha_i h_i))) from the earlier columns' activations into `target`'s shape."""

    def __init__(self, target: nn.Module, n_prev: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(n_prev))  # alpha_i, one per earlier column
        if isinstance(target, nn.Conv2d):
            c = target.in_channels
            self.v = nn.Conv2d(n_prev * c, c, 1)
            self.u = nn.Conv2d(c, target.out_channels, target.kernel_size)
        else:
            c = target.in_features
            self.v = nn.Linear(n_prev * c, c)
            self.u = nn.Linear(c, target.out_features)

    def forward(self, previous: list[torch.Tensor]) -> torch.Tensor:
        z = torch.cat([self.scale[i] * h for i, h in enumerate(previous)], dim=1)
        return self.u(torch.relu(self.v(z)))


class Column(nn.Module):
    """`layers[l]` (conv or linear) followed by `post[l]` (ReLU, dropout, pooling, flatten)."""

    def __init__(self, layers: list[nn.Module], post: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.post = nn.ModuleList(post)


class Progressive(nn.Module):
    """Columns built by `make_column()`; adapters[j][l-1] feeds layer l of column j (j, l >= 1)."""

    def __init__(self, task_classes, make_column):
        super().__init__()
        n_tasks = len(task_classes)
        self.columns = nn.ModuleList(make_column() for _ in range(n_tasks))
        depth = len(self.columns[0].layers)
        self.adapters = nn.ModuleList(
            nn.ModuleList(Lateral(self.columns[j].layers[k], j) for k in range(1, depth) if j > 0)
            for j in range(n_tasks))
        out = self.columns[0].layers[-1]
        self.last = MultiHead(out.out_features, task_classes)

    def task_parameters(self, t: int):
        """Column t, its adapters and head t: everything trained on task t."""
        yield from self.columns[t].parameters()
        yield from self.adapters[t].parameters()
        yield from self.last.heads[t].parameters()

    def features(self, x: torch.Tensor, t: int) -> torch.Tensor:
        depth = len(self.columns[0].layers)
        hs = [x] * (t + 1)  # current input of columns 0..t
        for k in range(depth):
            # Earlier columns' last layer only fed the (dead) head adapters: skip it.
            cols = range(t + 1) if k < depth - 1 else (t,)
            new = list(hs)
            for j in cols:
                pre = self.columns[j].layers[k](hs[j])
                if k > 0 and j > 0:
                    pre = pre + self.adapters[j][k - 1](hs[:j])
                new[j] = self.columns[j].post[k](pre)
            hs = new
        return hs[t]

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        if torch.is_tensor(t):
            raise ValueError("progressive networks need one task id per batch (an int)")
        return self.last(self.features(x, t), t)


def _alexnet_column(input_shape, widths, dropout: bool) -> Column:
    channels, size, _ = input_shape
    kernels = alexnet_kernel_sizes(size)
    p_small, p_large = (0.2, 0.5) if dropout else (0.0, 0.0)
    layers, post, c_in, spatial = [], [], channels, size
    for c_out, k, p in zip(widths[:3], kernels, (p_small, p_small, p_large)):
        layers.append(nn.Conv2d(c_in, c_out, k))
        post.append(nn.Sequential(nn.ReLU(), nn.Dropout(p), nn.MaxPool2d(2)))
        c_in, spatial = c_out, (spatial - k + 1) // 2
    post[-1].append(nn.Flatten())
    width = c_in * spatial * spatial
    for units in widths[3:]:
        layers.append(nn.Linear(width, units))
        post.append(nn.Sequential(nn.ReLU(), nn.Dropout(p_large)))
        width = units
    return Column(layers, post)


def column_widths(base: tuple[int, ...], n_tasks: int, factor: float = WIDTH_FACTOR) -> list[int]:
    """int(factor * w / T) for each base width w (8, 17, 35, 285, 285 for AlexNet at T=8)."""
    return [max(1, int(factor * w / n_tasks)) for w in base]


class AlexNetProgressive(Progressive):
    """AlexNet columns of widths int(1.117 * {64, 128, 256, 2048, 2048} / T)."""

    def __init__(self, input_shape, task_classes, dropout: bool = True,
                 width_factor: PositiveFloat = WIDTH_FACTOR):
        widths = column_widths((64, 128, 256, 2048, 2048), len(task_classes), width_factor)
        super().__init__(task_classes, lambda: _alexnet_column(input_shape, widths, dropout))


class MLPProgressive(Progressive):
    """flatten -> [Linear(hidden) -> ReLU -> Dropout] x layers per column; hidden defaults to
    int(1.117 * 800 / T)."""

    def __init__(self, input_shape, task_classes, hidden: Size | None = None, layers: Size = 3,
                 dropout: DropRate = 0.5):
        width = hidden or column_widths((800,), len(task_classes))[0]

        def make_column():
            mods, post, w = [], [], math.prod(input_shape)
            for _ in range(layers):
                mods.append(nn.Linear(w, width))
                post.append(nn.Sequential(nn.ReLU(), nn.Dropout(dropout)))
                w = width
            return Column(mods, post)

        super().__init__(task_classes, make_column)

    def features(self, x, t):
        return super().features(x.flatten(1), t)


NETWORKS.register("alexnet-progressive")(AlexNetProgressive)
NETWORKS.register("mlp-progressive")(MLPProgressive)
