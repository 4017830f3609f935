"""The network registry: NETWORKS maps "arch" (a plain network) or "arch-family" to a network class.
The plain networks register here; each family's module (dwa.py, hat.py, ...) registers its variants
when `dwa_core.models` imports it."""

from __future__ import annotations

from dwa_core.models.plain import MLP, AlexNet
from dwa_core.registry import Registry

NETWORKS: Registry = Registry("network")
NETWORKS.register("mlp")(MLP)
NETWORKS.register("alexnet")(AlexNet)
