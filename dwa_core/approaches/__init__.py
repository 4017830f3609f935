"""Continual-learning approaches: one file, one class each, registered by name."""

from __future__ import annotations

import importlib
import pkgutil

from dwa_core.approaches.base import Approach, DivergedError
from dwa_core.registry import Registry

APPROACHES: Registry = Registry("approach")
register = APPROACHES.register


def _import_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name not in ("base", "schedule", "shared"):
            importlib.import_module(f"{__name__}.{info.name}")


def get(name: str) -> type[Approach]:
    _import_all()
    return APPROACHES.get(name)


def names() -> list[str]:
    _import_all()
    return APPROACHES.names()


def describe() -> dict[str, str]:
    _import_all()
    return APPROACHES.describe()


__all__ = ["Approach", "DivergedError", "APPROACHES", "register", "get", "names", "describe"]
