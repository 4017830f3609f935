"""DWA networks (docs/original-code.md#network, #masked-layers-and-mask-generation; paper §3-4, Fig. 3).

A context processor turns the output of the plain "stem" layers into a per-sample embedding
E (B, d); mask generators turn E into one mask H_j per masked layer; masked layer j uses
W_j ⊙ H_j for each sample. After each forward, `model.state` holds E and the masks (for the losses
in dwa_core/functional/dwa_masks.py, the anchors and introspection, docs/original-code.md#introspection).

Departures from the original code, each a fix of a crash or an undefined value:
* masked layers are initialised by the project's weight init (`init_kind`); the original code never was;
* `use_concat`: the running concatenation is adaptive-max-pooled to the new stem output's size
  before each concatenation (the original code max-pooled by 2: 16x16 vs 14x14 crashed);
* `use_processor=False`: the one-hot task vector (d = T) is broadcast over the batch;
* an unknown gate is an error (the original code fell back to sigmoid).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import nn

from dwa_core.coerce import Bounds, ConfigError, Size
from dwa_core.fields import Spec
from dwa_core.functional.gates import GATES, Gate, gate_fn
from dwa_core.models.heads import MultiHead
from dwa_core.models.masked import IMPLS, FullMask, MaskedConv2d, MaskedLinear, RankOneMask, pre_activation
from dwa_core.models.plain import alexnet_kernel_sizes
from dwa_core.models.registry import NETWORKS


@dataclass
class DWAState:
    """What the last forward produced: E (B, d) and {weight name -> mask} in layer order."""
    embedding: torch.Tensor
    masks: dict


@dataclass(frozen=True)
class LayerSpec:
    name: str
    kind: str  # "conv" | "linear"
    c_in: int
    c_out: int
    kernel: int = 0
    dropout: float = 0.0  # used only with use_dropout


def combination_sizes(s: int) -> tuple[int, int]:
    """(a, b): a = the largest divisor of s not above floor(sqrt(s)) + 1, b = s / a
    (docs/original-code.md#masked-layers-and-mask-generation)."""
    a = max(d for d in range(1, math.isqrt(s) + 2) if s % d == 0)
    return a, s // a


class FullGenerator(nn.Module):
    """One Linear(d -> prod(shape)); H = gate(.) (conv masks, dense without combination). Under
    numerics 5 with impl "fast", tanh is the C kernels' and adds the Linear's bias in its pass, the
    masked layer's pass that makes W ⊙ H (models/masked.py, pre_activation)."""

    def __init__(self, d: int, shape: tuple[int, ...], impl: str = "fast"):
        super().__init__()
        self.shape, self.impl = shape, impl
        self.linear = nn.Linear(d, math.prod(shape))

    def forward(self, e: torch.Tensor, gate: str) -> FullMask:
        if gate == "tanh" and (pre := pre_activation(e, self.linear.weight, self.linear.bias, self.impl,
                                                     self.shape)) is not None:
            return FullMask(pre=pre)  # the layer gates it in its own pass (models/masked.py)
        return FullMask(gate_fn(gate)(self.linear(e)).view(-1, *self.shape))

    @torch.no_grad()
    def start_open(self, pre: float) -> None:
        """Bias every pre-activation to `pre`, so each mask entry starts at gate(pre)."""
        self.linear.bias.fill_(pre)


class RankOneGenerator(nn.Module):
    """H = gate(g2(E) g1(E)ᵀ) reshaped row-major to (out, in): the gate acts on the product."""

    def __init__(self, d: int, shape: tuple[int, int]):
        super().__init__()
        self.shape = shape
        a, b = combination_sizes(math.prod(shape))
        self.g1, self.g2 = nn.Linear(d, a), nn.Linear(d, b)

    def forward(self, e: torch.Tensor, gate: str) -> RankOneMask:
        return RankOneMask(self.g2(e), self.g1(e), gate, self.shape)

    @torch.no_grad()
    def start_open(self, pre: float) -> None:
        """Bias both factors to sqrt(pre), so u_i v_j ≈ pre and each entry starts at gate(pre)."""
        self.g1.bias.fill_(math.sqrt(pre))
        self.g2.bias.fill_(math.sqrt(pre))


def gate_inverse(gate: str, value: float) -> float:
    """The pre-activation z with gate(z) = value: atanh for tanh, logit for sigmoid."""
    return math.atanh(value) if gate == "tanh" else math.log(value / (1 - value))


def check_mask_start(value, gate: str) -> float | None:
    """`mask_start` is None (the paper's init) or a float in (low, 1): low = 0 for tanh, 0.5 for
    sigmoid, since a rank-1 mask gate(u_i v_j) starts at gate(pre) only for pre > 0."""
    if value is None:
        return None
    low = 0.0 if gate == "tanh" else 0.5
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value < 1:
        raise ConfigError(f"mask_start: must be None or a number in ({low:g}, 1) for the {gate} gate, "
                          f"got {value!r}")
    return float(value)


def conv_processor(channels: int, size: int, feats: tuple[int, int], d: int) -> nn.Sequential:
    """[maxpool2 if S >= 14] -> 1x1 conv F_B -> ReLU -> 3x3/s2/p1 conv F_E -> ReLU -> Linear(d)."""
    pooled = size // 2 if size >= 14 else size
    return nn.Sequential(
        nn.MaxPool2d(2) if size >= 14 else nn.Identity(),
        nn.Conv2d(channels, feats[0], 1), nn.ReLU(),
        nn.Conv2d(feats[0], feats[1], 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(feats[1] * math.ceil(pooled / 2) ** 2, d))


def linear_processor(dim: int, feats: tuple[int, int], d: int) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(dim, feats[0]), nn.ReLU(),
                         nn.Linear(feats[0], feats[1]), nn.ReLU(), nn.Linear(feats[1], d))


GATE = Spec("the gate that turns generator outputs into masks H: 'tanh' (the paper, H in (-1, 1)) or "
            "'sigmoid' (the original code's default, H in (0, 1))", "DWA paper (switch: sigmoid)",
            original="sigmoid",
            what="DWA's code default gate is sigmoid; the paper and the published runs use tanh")


class DWANet(nn.Module):
    """Layers `specs` (conv blocks: layer -> ReLU -> dropout -> maxpool2; dense: layer -> ReLU ->
    dropout); the first `use_stem` are plain, the rest masked; heads under `last`."""

    def __init__(self, input_shape, task_classes, specs, *, use_processor=True,
                 processor_feats: tuple[Size, ...] = (32, 128),
                 emb_size: Annotated[int, Bounds(0), Spec("size of the task embedding E", "DWA paper")] = 100,
                 use_stem: Annotated[Any, Spec("layers before the first masked one", "DWA paper")] = 1,
                 use_concat=False, use_combination=True, use_dropout=False,
                 gate: Annotated[Gate, GATE] = "tanh", masked_impl="fast", mask_start: float | None = None):
        super().__init__()
        if gate not in GATES:
            raise ConfigError(f"gate: must be one of {', '.join(GATES)}, got {gate!r}")
        if masked_impl not in IMPLS:
            raise ConfigError(f"masked_impl: must be one of {', '.join(IMPLS)}, got {masked_impl!r}")
        for name, flag in (("use_processor", use_processor), ("use_concat", use_concat),
                           ("use_combination", use_combination), ("use_dropout", use_dropout)):
            # the original code's scripts passed 'true'/'false' strings (docs/original-code.md#network)
            if not isinstance(flag, bool):
                raise ConfigError(f"{name}: must be true or false, got {flag!r}")
        self.mask_start = check_mask_start(mask_start, gate)
        stem = 0 if use_stem is None else int(use_stem)
        if not 0 <= stem < len(specs):
            raise ConfigError(f"use_stem: must be in 0..{len(specs) - 1} (at least one masked layer), "
                              f"got {use_stem!r}")
        self.specs, self.stem, self.gate = list(specs), stem, gate
        self.use_processor, self.use_concat, self.use_dropout = bool(use_processor), use_concat, use_dropout
        self.n_tasks = len(task_classes)
        self.embedding_size = int(emb_size) if self.use_processor and emb_size else self.n_tasks
        for i, spec in enumerate(self.specs):
            setattr(self, spec.name, self._layer(spec, masked=i >= stem, impl=masked_impl))
        self.generators = nn.ModuleDict({
            s.name: self._generator(s, use_combination) for s in self.specs[stem:]})
        if self.use_processor:
            self.processor = self._processor(input_shape, tuple(processor_feats))
        self.last = MultiHead(self.specs[-1].c_out, task_classes)
        self.state: DWAState | None = None
        # {masked weight name: F}: the weights of the plasticity term (Eq. 5), set by the DWA approach
        # after each task. The fused CPU kernel of a rank-1 masked layer then computes Σ F relu(H_b) in
        # the layer's own pass over H_b (RankOneMask.relu_sum), which plasticity_loss uses.
        self.plasticity_weights: dict | None = None

    @staticmethod
    def _layer(spec: LayerSpec, masked: bool, impl: str) -> nn.Module:
        if spec.kind == "conv":
            return (MaskedConv2d(spec.c_in, spec.c_out, spec.kernel, impl) if masked
                    else nn.Conv2d(spec.c_in, spec.c_out, spec.kernel))
        return MaskedLinear(spec.c_in, spec.c_out, impl) if masked else nn.Linear(spec.c_in, spec.c_out)

    def _generator(self, spec: LayerSpec, use_combination: bool) -> nn.Module:
        shape = tuple(getattr(self, spec.name).weight.shape)
        if spec.kind == "linear" and use_combination:
            a, b = combination_sizes(math.prod(shape))
            if (b, a) != shape and math.prod(shape) >= 100_000:  # small layers: the slow path costs little
                warnings.warn(f"dwa_core: masked layer {spec.name} ({shape[0]}x{shape[1]}): its rank-1 mask "
                              f"factors are {b}x{a}, not (out, in), so the fused kernels cannot compute "
                              f"it and it takes the per-sample PyTorch path (several times slower); "
                              f"widths whose factors align: in x out with no divisor of in·out between min "
                              f"and sqrt(in·out) + 1 (e.g. 784x800, 800x800)", stacklevel=4)
            return RankOneGenerator(self.embedding_size, shape)
        return FullGenerator(self.embedding_size, shape, getattr(self, spec.name).impl)

    @torch.no_grad()
    def _processor(self, input_shape, feats) -> nn.Sequential:
        """Size the processor from a dry run of the stem on a zero input."""
        probe = self._stem_forward(torch.zeros(1, *input_shape))[1]
        if probe.dim() == 4:
            return conv_processor(probe.shape[1], probe.shape[-1], feats, self.embedding_size)
        return linear_processor(probe[0].numel(), feats, self.embedding_size)

    def after_weight_init(self) -> None:
        """With `mask_start` = m, bias the mask generators so every mask entry starts near m, and
        divide each masked weight by m, so W ⊙ H starts at the scale the weight init chose for W
        (called by `models.build` after the weight init, which zeroes biases)."""
        if self.mask_start is None:
            return
        pre = gate_inverse(self.gate, self.mask_start)
        with torch.no_grad():
            for spec in self.specs[self.stem:]:
                self.generators[spec.name].start_open(pre)
                getattr(self, spec.name).weight.div_(self.mask_start)  # W ⊙ H keeps W's initial scale

    def masked_weight_names(self) -> list[str]:
        return [f"{s.name}.weight" for s in self.specs[self.stem:]]

    def _block(self, spec: LayerSpec, h: torch.Tensor, mask=None) -> torch.Tensor:
        if spec.kind == "linear" and h.dim() > 2:
            h = h.flatten(1)  # channel-major, as the original code
        layer = getattr(self, spec.name)
        h = F.relu(layer(h) if mask is None else layer(h, mask))
        if self.use_dropout:
            h = F.dropout(h, spec.dropout, self.training)
        return F.max_pool2d(h, 2) if spec.kind == "conv" else h

    def _stem_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Plain layers -> (their output, the processor input). With use_concat the processor reads
        the input and every stem output, concatenated."""
        h, trail = x, x
        for spec in self.specs[: self.stem]:
            h = self._block(spec, h)
            if not self.use_concat:
                trail = h
            elif h.dim() == 4:  # pool the running concatenation to the new size (the original code crashed)
                trail = torch.cat([F.adaptive_max_pool2d(trail, h.shape[-2:]), h], dim=1)
            else:
                trail = torch.cat([trail.flatten(1), h], dim=1)
        return h, trail

    def _embedding(self, proc_in, x, t, embedding) -> torch.Tensor:
        batch = x.shape[0]
        # anchor search: one ungated vector for every sample (docs/original-code.md#network)
        if embedding is not None:
            return embedding.to(x.dtype).expand(batch, -1) if embedding.dim() == 1 else embedding
        if self.use_processor:
            return gate_fn(self.gate)(self.processor(proc_in))
        ids = t if torch.is_tensor(t) else torch.full((batch,), int(t), device=x.device)
        return F.one_hot(ids.long(), self.n_tasks).to(x.dtype)

    def forward(self, x: torch.Tensor, t, embedding: torch.Tensor | None = None) -> torch.Tensor:
        x = self._prepare(x)
        h, proc_in = self._stem_forward(x)
        e = self._embedding(proc_in, x, t, embedding)  # (B, d)
        masks = {f"{s.name}.weight": self.generators[s.name](e, self.gate) for s in self.specs[self.stem:]}
        for name, mask in masks.items():
            if self.plasticity_weights:
                mask.relu_weight = self.plasticity_weights.get(name)
        for spec in self.specs[self.stem:]:
            h = self._block(spec, h, masks[f"{spec.name}.weight"])
        self.state = DWAState(e, masks)
        return self.last(h, t)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x


class AlexNetDWA(DWANet):
    """docs/original-code.md#network: c1 4x4 3->64, c2 3x3 64->128, c3 2x2 128->256, fc1 1024->2048, fc2
    2048->2048."""

    def __init__(self, input_shape, task_classes, fc_units: Size = 2048, **kwargs):
        channels, size, _ = input_shape
        kernels, spatial = alexnet_kernel_sizes(size), size
        for k in kernels:
            spatial = (spatial - k + 1) // 2
        specs = [LayerSpec("c1", "conv", channels, 64, kernels[0], 0.2),
                 LayerSpec("c2", "conv", 64, 128, kernels[1], 0.2),
                 LayerSpec("c3", "conv", 128, 256, kernels[2], 0.5),
                 LayerSpec("fc1", "linear", 256 * spatial * spatial, fc_units, dropout=0.5),
                 LayerSpec("fc2", "linear", fc_units, fc_units, dropout=0.5)]
        super().__init__(input_shape, task_classes, specs, **kwargs)


class MLPDWA(DWANet):
    """MNIST-style DWA: flatten -> masked fc1, fc2 (hidden units each) -> heads. With the default
    use_stem=0 the processor is linear and reads the flattened input (our design; the original code has no
    MLP variant of DWA)."""

    def __init__(self, input_shape, task_classes, hidden: Size = 800, layers: Size = 2, use_stem: int = 0,
                 **kwargs):
        width, specs = math.prod(input_shape), []
        for i in range(layers):
            specs.append(LayerSpec(f"fc{i + 1}", "linear", width, hidden, dropout=0.5))
            width = hidden
        super().__init__((math.prod(input_shape),), task_classes, specs, use_stem=use_stem, **kwargs)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


NETWORKS.register("alexnet-dwa")(AlexNetDWA)
NETWORKS.register("mlp-dwa")(MLPDWA)
