"""Networks: every network maps (x, t) -> logits of task t and has one head per task.

`build(arch, family, ...)`: arch is "mlp" or "alexnet"; family is the approach's network family
("plain", "hat", "dwa", "lfl", "progressive", "pathnet"). Variants register as "arch" (plain) or
"arch-family"."""

from __future__ import annotations

from torch import nn

from dwa_core.config import ConfigError
from dwa_core.models.init import apply_weight_init
from dwa_core.models.plain import MLP, AlexNet
from dwa_core.registry import Registry

NETWORKS: Registry = Registry("network")
NETWORKS.register("mlp")(MLP)
NETWORKS.register("alexnet")(AlexNet)
ARCHITECTURES = ("mlp", "alexnet")


# Old names of network sizes, still accepted in network_params (presets, sweeps, the CLI): every
# family now says `hidden` (units per layer) and `layers` (number of hidden layers).
ALIASES = {"nhid": "hidden", "nlayers": "layers"}


def canonical_params(params: dict | None) -> dict:
    """network_params with old size names (ALIASES) renamed. Raises ConfigError when a size is given
    under both names."""
    out = {}
    for key, value in (params or {}).items():
        new = ALIASES.get(key, key)
        if new in out or (new != key and new in (params or {})):
            raise ConfigError(f"network_params: {key!r} is the old name of {new!r}; give only one")
        out[new] = value
    return out


def network_name(arch: str, family: str) -> str:
    return arch if family == "plain" else f"{arch}-{family}"


def build(arch: str, family: str, input_shape, task_classes, params: dict | None = None,
          weight_init: str | None = "kaiming:xavier") -> nn.Module:
    """Build and initialise the network `arch` of `family` for a benchmark's shape and heads."""
    if arch not in ARCHITECTURES:
        raise ConfigError(f"network: must be 'auto' or one of {', '.join(ARCHITECTURES)}, got {arch!r}")
    name = network_name(arch, family)
    if name not in NETWORKS:
        raise ConfigError(f"network: no {family!r} variant of {arch!r}; available: "
                          f"{', '.join(NETWORKS.names())}")
    try:
        model = NETWORKS.get(name)(tuple(input_shape), list(task_classes), **canonical_params(params))
    except TypeError as err:
        raise ConfigError(f"network_params for {name}: {err}") from err
    if weight_init:
        apply_weight_init(model, weight_init)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())



# Variants register themselves on import (after NETWORKS exists).
from dwa_core.models import dwa, hat, pathnet, progressive  # noqa: E402,F401
