"""Weight initialisation schemes selectable per layer kind
(docs/original-code.md#command-line-and-initialisation, `--weight_init`).

"pytorch" is PyTorch's own default for Linear and Conv2d, which the original code kept when
`--weight_init` was not given: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (the weight
through kaiming_uniform_ with a = sqrt(5)). Every script of the original code passed kaiming:xavier,
the paper's scheme and our default; "pytorch" reproduces runs made without the option."""

from __future__ import annotations

import hashlib
import math

import torch
from torch import nn

from dwa_core.config import WeightScheme, parse_weight_init  # noqa: F401 (the spec grammar)

SCHEMES = {  # one per config.WeightScheme (tests/test_fields.py checks the names)
    "kaiming": lambda w: nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu"),
    "xavier": lambda w: nn.init.xavier_uniform_(w, gain=1.0),
    "normal": lambda w: nn.init.normal_(w, 0.0, 1.0),
    "uniform": lambda w: nn.init.uniform_(w, 0.0, 1.0),
    "ones": nn.init.ones_,
    "zeros": nn.init.zeros_,
    "pytorch": lambda w: nn.init.kaiming_uniform_(w, a=math.sqrt(5)),
}


def _init_bias(bias: torch.Tensor, scheme: str, weight: torch.Tensor) -> None:
    # kaiming/xavier are undefined on 1-d tensors: treat them as zeros, like the original code's default.
    if scheme in ("kaiming", "xavier"):
        nn.init.zeros_(bias)
    elif scheme == "pytorch":  # nn.Linear / nn.Conv2d reset_parameters: bound from the weight's fan-in
        fan_in = weight[0].numel()
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(bias, -bound, bound)
    else:
        SCHEMES[scheme](bias)


def _layer_kind(module: nn.Module) -> str | None:
    """"conv" or "linear" for a layer the weight schemes apply to (Conv2d/Linear, or a module that
    sets `init_kind`), else None."""
    kind = getattr(module, "init_kind", None)
    if kind is None:
        kinds = {nn.Conv2d: "conv", nn.Linear: "linear"}
        kind = next((k for cls, k in kinds.items() if isinstance(module, cls)), None)
    if kind is None or getattr(module, "weight", None) is None:
        return None
    return kind


def _init_layer(module: nn.Module, schemes: dict[str, str]) -> None:
    kind = _layer_kind(module)
    if kind is None:
        return
    SCHEMES[schemes[kind]](module.weight)
    if getattr(module, "bias", None) is not None:
        _init_bias(module.bias, schemes[f"{kind}_bias"], module.weight)


@torch.no_grad()
def apply_weight_init(model: nn.Module, spec: str) -> nn.Module:
    """Initialise every conv and linear layer of `model` (including the heads) by `spec`, in module
    order, from the global random stream. Layers opt in by being Conv2d/Linear or by setting
    `init_kind = "conv" | "linear"`."""
    schemes = parse_weight_init(spec)
    for module in model.modules():
        _init_layer(module, schemes)
    return model


def stream_seed(seed: int, name: str) -> int:
    """The seed of module `name`'s own random stream in a network built with `seed`: a stable hash
    (sha256, 63 bits) of both, so that it depends on nothing else (not on the number of heads or of
    modules built before it, not on Python's hash randomisation)."""
    digest = hashlib.sha256(f"{int(seed)}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@torch.no_grad()
def seeded_init(model: nn.Module, spec: str | None, seed: int) -> nn.Module:
    """Initialise every module that owns parameters from its own stream, seeded by (`seed`, the
    module's qualified name; `stream_seed`): its `reset_parameters()` where it has one, then the
    weight scheme `spec` for conv and linear layers (None: no scheme).

    So a parameter's initial value is a function of the seed and its name alone: the trunk of a
    network is the same whether it was built with 2 heads or 20, and `max_tasks = N` trains
    exactly the first N tasks of the full run. The global random state is left as it was."""
    schemes = parse_weight_init(spec) if spec else None
    for name, module in model.named_modules():
        if not any(True for _ in module.parameters(recurse=False)):
            continue
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stream_seed(seed, name))
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            if schemes is not None:
                _init_layer(module, schemes)
    return model
