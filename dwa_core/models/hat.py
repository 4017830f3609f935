"""HAT networks (docs/original-code.md#hat): a task embedding per gated layer, unit masks a = sigmoid(s
e_t)."""

from __future__ import annotations

import math
from typing import Annotated

import torch
from torch import nn

from dwa_core.coerce import Bounds, Size
from dwa_core.fields import Spec
from dwa_core.functional.hat import channels_to_units, gate, weight_view
from dwa_core.models.heads import MultiHead
from dwa_core.models.init import stream_seed
from dwa_core.models.plain import alexnet_kernel_sizes
from dwa_core.models.registry import NETWORKS

# Masks below this are set to exactly 0. At large s many masks are ~exp(-s|e|) (down to 1e-45,
# float32 denormals) that make CPU matmuls up to ~200x slower on any thread that does not
# flush them, and torch.set_flush_denormal reaches only the calling thread, not PyTorch's intra-op
# worker threads (measured: 64x800 @ 800x800 with denormal input, 2 threads: 55.7 ms vs 0.30 ms).
# A unit scaled by 1e-20 is off, so its value goes to 0; its embedding keeps its exact gradient.
NEGLIGIBLE_MASK = 1e-20


class TaskEmbedding(nn.Embedding):
    """(T, units) task embeddings e_t, one row per task. Each row is drawn from its own stream,
    seeded by one draw from the global stream and the row's index, so task t's embedding is the same
    whatever the number of tasks T. init: "normal" (N(0, 1), nn.Embedding's) or "uniform02" (U(0, 2),
    the original code's hat-test network)."""

    def __init__(self, n_tasks: int, units: int, init: str = "normal"):
        self.init = init  # read by reset_parameters, which nn.Embedding's constructor calls
        super().__init__(n_tasks, units)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        base = int(torch.randint(0, 2**62, (1,)).item())
        for t in range(self.num_embeddings):
            stream = torch.Generator().manual_seed(stream_seed(base, f"task{t}"))
            if self.init == "uniform02":
                self.weight[t].uniform_(0.0, 2.0, generator=stream)
            else:
                self.weight[t].normal_(0.0, 1.0, generator=stream)


class HATNet(nn.Module):
    """Shared parts: `layers` (name -> conv/linear, in order), `emb` (name -> nn.Embedding(T, units)),
    `pre` (name -> (previous gated layer or None, spatial repeat of its mask))."""

    def _make_embeddings(self, units: dict, n_tasks: int, embedding_init: str) -> None:
        if embedding_init not in ("normal", "uniform02"):
            raise ValueError(f"embedding_init must be 'normal' or 'uniform02', got {embedding_init!r}")
        self.emb = nn.ModuleDict({k: TaskEmbedding(n_tasks, u, embedding_init) for k, u in units.items()})

    def mask(self, name: str, t, s: float) -> torch.Tensor:
        e = self.emb[name].weight[t] if isinstance(t, int) else self.emb[name](t)
        a = gate(e, s)
        # the value with the negligible masks at 0; the gradient of the exact a (straight through),
        # because HAT's compensation can scale an embedding gradient of s·a(1-a) ~ 1e-21 up to O(1)
        return a + (a.masked_fill(a < NEGLIGIBLE_MASK, 0.0) - a).detach()

    def masks(self, t: int, s: float) -> dict:
        """The unit masks of task t at scale s, layer name -> (units,)."""
        return {k: self.mask(k, t, s) for k in self.emb}

    def views(self, masks: dict) -> dict:
        """Parameter name -> min(a_post, a_pre) shaped like the parameter (the gradient conditioning)."""
        out = {}
        for name, layer in self.layers.items():
            prev, spatial = self.pre[name]
            pre = None if prev is None else channels_to_units(masks[prev], spatial)
            out[f"layers.{name}.weight"] = weight_view(masks[name], pre, layer.weight.dim())
            out[f"layers.{name}.bias"] = masks[name]
        return out


class MLPHAT(HATNet):
    """input dropout 0.2 -> [Linear(hidden) -> ReLU -> Dropout 0.5 -> mask] x layers -> heads
    (the original code's nhid / nlayers; models.build still accepts those names)."""

    def __init__(self, input_shape, task_classes,
                 hidden: Annotated[Size, Spec("units per hidden layer", "original mlp_hat")] = 2000,
                 layers: Annotated[int, Bounds(1, 3)] = 2, embedding_init: str = "normal"):
        super().__init__()
        if not 1 <= layers <= 3:
            raise ValueError(f"layers must be 1..3, got {layers}")
        width, names = math.prod(input_shape), [f"fc{i + 1}" for i in range(layers)]
        self.layers = nn.ModuleDict()
        for name in names:
            self.layers[name], width = nn.Linear(width, hidden), hidden
        self.pre = {n: (names[i - 1] if i else None, 1) for i, n in enumerate(names)}
        self.drop_in, self.drop, self.relu = nn.Dropout(0.2), nn.Dropout(0.5), nn.ReLU()
        self._make_embeddings({n: hidden for n in names}, len(task_classes), embedding_init)
        self.last = MultiHead(hidden, task_classes)

    def forward(self, x, t, s: float = 400.0, return_masks: bool = False):
        h, masks = self.drop_in(x.flatten(1)), {}
        for name, layer in self.layers.items():
            masks[name] = self.mask(name, t, s)
            h = self.drop(self.relu(layer(h))) * masks[name]
        out = self.last(h, t)
        return (out, masks) if return_masks else out


class AlexNetHAT(HATNet):
    """AlexNet of plain.py with channel masks after each conv block's pool and unit masks after fc1-2."""

    def __init__(self, input_shape, task_classes, dropout: bool = True, fc_units: Size = 2048,
                 embedding_init: str = "normal"):
        super().__init__()
        channels, size, _ = input_shape
        p_small, p_large = (0.2, 0.5) if dropout else (0.0, 0.0)
        self.layers, self.drops, spatial = nn.ModuleDict(), nn.ModuleDict(), size
        for i, (c_in, c_out, k, p) in enumerate(zip((channels, 64, 128), (64, 128, 256),
                                                    alexnet_kernel_sizes(size), (p_small, p_small, p_large))):
            self.layers[f"c{i + 1}"], self.drops[f"c{i + 1}"] = nn.Conv2d(c_in, c_out, k), nn.Dropout(p)
            spatial = (spatial - k + 1) // 2
        self.layers["fc1"] = nn.Linear(256 * spatial * spatial, fc_units)
        self.layers["fc2"] = nn.Linear(fc_units, fc_units)
        self.drops["fc1"], self.drops["fc2"] = nn.Dropout(p_large), nn.Dropout(p_large)
        self.pre = {"c1": (None, 1), "c2": ("c1", 1), "c3": ("c2", 1), "fc1": ("c3", spatial * spatial),
                    "fc2": ("fc1", 1)}
        self.relu, self.pool = nn.ReLU(), nn.MaxPool2d(2)
        units = {"c1": 64, "c2": 128, "c3": 256, "fc1": fc_units, "fc2": fc_units}
        self._make_embeddings(units, len(task_classes), embedding_init)
        self.last = MultiHead(fc_units, task_classes)

    def forward(self, x, t, s: float = 400.0, return_masks: bool = False):
        h, masks = x, {}
        for name, layer in self.layers.items():
            masks[name] = m = self.mask(name, t, s)
            if name.startswith("c"):
                h = self.pool(self.drops[name](self.relu(layer(h)))) * m[..., :, None, None]
            else:
                h = self.drops[name](self.relu(layer(h.flatten(1)))) * m
        out = self.last(h, t)
        return (out, masks) if return_masks else out


NETWORKS.register("mlp-hat")(MLPHAT)
NETWORKS.register("alexnet-hat")(AlexNetHAT)
