"""Typing a config value from its annotation: the one place where a string from the CLI or a
JSON list becomes the declared type (bool, int, float, str, tuple, Literal, a nested dataclass)
and where an `Annotated[..., Bounds(...)]` interval is checked. `fields.validate` applies it to
every field of a config dataclass; `models.network_params` to every network option.

Errors are `ConfigError("name: must be ..., got ...")`, naming the field."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal


class ConfigError(ValueError):
    """An invalid configuration value: the message names the field and what is allowed."""


def check(condition: bool, field_name: str, allowed: str, value: Any) -> None:
    """Raise a ConfigError naming the field, the allowed values and the value given."""
    if not condition:
        raise ConfigError(f"{field_name}: must be {allowed}, got {value!r}")


def check_path_component(value: str, field_name: str) -> None:
    """A user-given name that becomes part of a file or folder name (a run's `name`, a sweep's
    name) must be one path component: no '/', '\\' or NUL, no control character, not '.' or '..'
    (so that it can never write outside its folder). Raises ConfigError."""
    bad = (any(c in value for c in "/\\\0") or any(ord(c) < 32 for c in value) or value in (".", ".."))
    check(not bad, field_name, "one folder-name component (no '/', '\\', '..' or control characters)",
          value)


@dataclass(frozen=True)
class Bounds:
    """The interval a number must lie in, written in its annotation so that it is declared once:
    `Annotated[int, Bounds(1)]` is >= 1, `Annotated[float, Bounds(0, 1, high_open=True)]` is in
    [0, 1). `coerce_value` checks it after typing the value (a ConfigError naming the field)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def allows(self, value) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                    f"{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"{'<' if self.high_open else '<='} {self.high:g}" if self.high is not None else "any"


# Bounded types of network sizes and rates (models/*: the constructors' keyword options).
Size = Annotated[int, Bounds(1)]  # a number of units, channels, layers or modules
DropRate = Annotated[float, Bounds(0, 1, high_open=True)]  # a dropout probability
PositiveFloat = Annotated[float, Bounds(0, low_open=True)]


def coerce_value(value: Any, annotation: Any, name: str) -> Any:
    """Coerce strings from the CLI / JSON lists into the annotated type (bool, int, float, tuple),
    then check an `Annotated[..., Bounds(...)]` annotation's interval."""
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing) | {"Literal": Literal})  # noqa: S307 (own annotations)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        value = coerce_value(value, args[0], name)
        for bounds in (a for a in args[1:] if isinstance(a, Bounds)):
            check(bounds.allows(value), name, f"{'an integer' if args[0] is int else 'a number'} {bounds}",
                  value)
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, args, name)
    if origin is Literal:
        check(value in args, name, "one of " + ", ".join(map(repr, args)), value)
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.strip("[]()").split(",") if v.strip()]
        check(isinstance(value, (list, tuple)), name, "a list", value)
        inner = args[0] if args else Any
        return tuple(coerce_value(v, inner, name) for v in value)
    if annotation in (bool, int, float, str):
        return _coerce_scalar(value, annotation, name)
    if annotation is dict or origin is dict:
        check(isinstance(value, dict), name, "a table of settings (a dict)", value)
        return value
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if hasattr(annotation, "coerce"):
            return annotation.coerce(value)
        check(isinstance(value, dict), name, f"a table of {annotation.__name__} settings (a dict)", value)
        return build_params(annotation, value, name)
    return value


def _coerce_union(value: Any, args: tuple, name: str) -> Any:
    """`value` as the first member of the union `args` that accepts it (None when NoneType is one),
    else the first member's ConfigError."""
    # A dataclass with its own `coerce` (Curriculum: a string "linear:100:0.2", a dict, "none")
    # reads every form itself, None included.
    own = [a for a in args if dataclasses.is_dataclass(a) and hasattr(a, "coerce")]
    if own:
        try:
            return own[0].coerce(value)
        except ConfigError as err:  # "curriculum: expected ..." -> "approach_params.curriculum: ..."
            short = name.rsplit(".", 1)[-1]
            text = str(err).removeprefix(f"{short}: ")
            raise ConfigError(f"{name}: {text}") from None
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in (a for a in args if a is not type(None)):
        try:
            return coerce_value(value, arg, name)
        except ConfigError as err:
            errors.append(str(err))
    raise ConfigError(errors[0] if errors else f"{name}: invalid value {value!r}")


def _coerce_scalar(value: Any, kind: type, name: str) -> Any:
    """`value` as a bool, int, float or str (`kind`): a string that reads as one is read ("3" -> 3,
    "yes" -> True, a path -> its string); anything else of another type is a ConfigError."""
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        check(isinstance(value, bool), name, "true or false", value)
        return value
    if kind is str:
        if isinstance(value, os.PathLike):  # output_dir=Path(...)
            return os.fspath(value)
        check(isinstance(value, str), name, "a string", value)
        return value
    if isinstance(value, str):
        try:
            value = kind(value)
        except ValueError:
            pass
    if kind is int:
        check(isinstance(value, int) and not isinstance(value, bool), name, "an integer", value)
        return value
    check(isinstance(value, (int, float)) and not isinstance(value, bool), name, "a number", value)
    check(math.isfinite(value), name, "a finite number", value)
    return float(value)


@functools.cache
def _hints(cls: type) -> dict:
    return typing.get_type_hints(cls, include_extras=True)


def build_params(cls: type, values: dict | None, owner: str) -> Any:
    """Instantiate the hyper-parameter dataclass `cls` from a dict; unknown keys are an error."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{owner}: unknown parameter(s) {', '.join(unknown)}; "
                          f"valid: {', '.join(fields) or '(none)'}")
    hints = _hints(cls)
    coerced = {k: coerce_value(v, hints[k], f"{owner}.{k}") for k, v in values.items()}
    return cls(**coerced)
