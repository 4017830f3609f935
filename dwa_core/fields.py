"""Fields that describe themselves: each hyper-parameter is declared once, with its default, its
type (a `Literal[...]` for a fixed set of values), its bounds, its documentation, its source (the
paper and equation) and, where one exists, the original code's value; validation, the fidelity
catalogue (`fidelity.SWITCHES`, `fidelity.AUDIT`), the `original-code` preset, the README's switch
list and the explorer's tooltips (`docs`) all read that one declaration.

    s_max: float = param(400.0, bounds=Bounds(1), doc="largest gate scale s_max",
                         source="HAT paper, Eq. 3")

Why `dataclasses.field(metadata=...)` behind a small `param(...)` helper: the default and everything
known about the field sit in one call, on the line that declares it, with the standard library
alone; `dataclasses.fields(cls)` hands the record to every reader, and `asdict(cfg)` (what results
files store) is untouched. The type stays a plain annotation, so `Literal` sets remain visible to
`typing` and to the widgets. Network options are constructor keywords rather than dataclass
fields, so the same `Spec` rides there in `typing.Annotated[type, Spec(...)]` (as `Bounds` does
in `Size`); `spec_of` reads either. pydantic would give validation too but would replace the frozen
dataclasses whose `asdict` the results files and the run keys depend on.

`validate(obj, owner)` is the one rule every config dataclass calls in `__post_init__`: type each
field (`coerce_value`), check its bounds, its own `check`, then the settings it `requires`.
Errors are `ConfigError("owner.field: must be ..., got ...")`.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from dwa_core.coerce import Bounds, ConfigError, build_params, check, coerce_value

__all__ = ["Bounds", "ConfigError", "Spec", "param", "spec_of", "specs", "docs", "validate", "check",
           "coerce_value", "build_params", "UNSET"]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "no original-code value": None is a real value (anchor_threshold)


@dataclass(frozen=True)
class Spec:
    """What is known about one field besides its default and type.

    doc: one or two sentences (the explorer's tooltip); source: where the default comes from
    (paper, equation, original code); bounds: the interval a number must lie in (None passes);
    check: `(value, name) -> None`, raising ConfigError, for a rule no type says (a pattern);
    original: the original code's behaviour where it differs from the paper's (a fidelity switch;
    `what` says in one line what the original does); code_value: the original code's value of a
    plain hyper-parameter (not a switch; read by the `original-code` preset); requires: (field,
    value) pairs of the same owner a non-default value needs (DWA's accumulated Fisher needs the
    batch form)."""

    doc: str
    source: str = ""
    bounds: Bounds | None = None
    check: Callable[[Any, str], Any] | None = None
    original: Any = UNSET
    what: str = ""
    code_value: Any = UNSET
    requires: tuple[tuple[str, Any], ...] = ()

    @property
    def is_switch(self) -> bool:
        return self.original is not UNSET


def param(default: Any = dataclasses.MISSING, *, doc: str, default_factory: Any = dataclasses.MISSING,
          **about: Any) -> Any:
    """A dataclass field with its `Spec` (keywords as `Spec`'s) in `metadata["spec"]`."""
    spec = Spec(doc=doc, **about)
    if spec.is_switch and not spec.what:
        raise TypeError("a field with an original-code value says `what` the original does")
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"spec": spec})


@functools.cache
def _hints(target: Any) -> dict:
    return typing.get_type_hints(target, include_extras=True)


def _annotated_spec(annotation: Any) -> Spec | None:
    if typing.get_origin(annotation) is Annotated:
        return next((a for a in typing.get_args(annotation)[1:] if isinstance(a, Spec)), None)
    return None


def specs(cls: type) -> dict[str, Spec | None]:
    """{field: Spec or None} of a config dataclass, in declaration order."""
    hints = _hints(cls)
    return {f.name: f.metadata.get("spec") or _annotated_spec(hints[f.name])
            for f in dataclasses.fields(cls)}


def spec_of(annotation: Any) -> Spec | None:
    """The Spec carried by an `Annotated[..., Spec(...)]` annotation (a network option), or None."""
    return _annotated_spec(annotation)


def docs(cls: type) -> dict[str, str]:
    """{field: its documentation} of a config dataclass (every field of TrainConfig,
    ExperimentConfig and each approach's and benchmark's Params has one)."""
    return {name: spec.doc for name, spec in specs(cls).items() if spec is not None}


def _check_spec(value: Any, spec: Spec | None, name: str) -> None:
    if spec is None:
        return
    if spec.bounds is not None and value is not None and not isinstance(value, bool):
        kind = "an integer" if isinstance(value, int) else "a number"
        check(spec.bounds.allows(value), name, f"{kind} {spec.bounds}", value)
    if spec.check is not None:
        spec.check(value, name)


def validate(obj: Any, owner: str = "") -> None:
    """Type, bound and check every field of the frozen dataclass `obj` from its declaration, then the
    settings each non-default value `requires`. "3" becomes 3 for an int; 2.5 or True for an int,
    inf for a float, a value outside a Literal, "zz" for a bool are ConfigErrors naming
    `owner + field`. Every config dataclass calls it first in `__post_init__`, so a field added
    later is checked too."""
    hints = _hints(type(obj))
    declared = specs(type(obj))
    for f in dataclasses.fields(obj):
        name, value = f"{owner}{f.name}", getattr(obj, f.name)
        typed = coerce_value(value, hints[f.name], name)
        _check_spec(typed, declared[f.name], name)
        if typed is not value:
            object.__setattr__(obj, f.name, typed)
    for f in dataclasses.fields(obj):
        spec, value = declared[f.name], getattr(obj, f.name)
        if spec is None or not spec.requires or value == f.default:
            continue
        for other, needed in spec.requires:
            check(getattr(obj, other) == needed, f"{owner}{f.name}",
                  f"{f.default!r} unless {other}={needed!r}", value)

