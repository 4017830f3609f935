"""Frozen, validated configuration: ExperimentConfig holds a TrainConfig and the parameters of
the benchmark and of the approach (each validated by that component's own dataclass)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import re
import types
import typing
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, ClassVar, Literal


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


def check_literals(obj: Any, owner: str) -> None:
    """Check every Literal[...]-typed field of the dataclass `obj` against its Literal's values
    (so the set of allowed values is written once, in the annotation). Raises ConfigError.
    `coerce_fields` does this too, with every other type, and is what the dataclasses call."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if typing.get_origin(hints[f.name]) is Literal:
            allowed = typing.get_args(hints[f.name])
            check(getattr(obj, f.name) in allowed, f"{owner}.{f.name}", " | ".join(allowed),
                  getattr(obj, f.name))


@dataclass(frozen=True)
class Bounds:
    """The interval a number must lie in, written in its annotation so that it is declared once:
    `Annotated[int, Bounds(1)]` is >= 1, `Annotated[float, Bounds(0, 1, high_open=True)]` is in
    [0, 1). `_coerce` checks it after typing the value (a ConfigError naming the field)."""

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


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    """Coerce strings from the CLI / JSON lists into the annotated type (bool, int, float, tuple),
    then check an `Annotated[..., Bounds(...)]` annotation's interval."""
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing) | {"Literal": Literal})  # noqa: S307 (own annotations)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        value = _coerce(value, args[0], name)
        for bounds in (a for a in args[1:] if isinstance(a, Bounds)):
            check(bounds.allows(value), name, f"{'an integer' if args[0] is int else 'a number'} {bounds}",
                  value)
        return value
    if origin in (typing.Union, types.UnionType):
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
                return _coerce(value, arg, name)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{name}: invalid value {value!r}")
    if origin is Literal:
        check(value in args, name, "one of " + ", ".join(map(repr, args)), value)
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.strip("[]()").split(",") if v.strip()]
        check(isinstance(value, (list, tuple)), name, "a list", value)
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, name) for v in value)
    if annotation is bool:
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        check(isinstance(value, bool), name, "true or false", value)
        return value
    if annotation is int:
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                pass
        check(isinstance(value, int) and not isinstance(value, bool), name, "an integer", value)
        return value
    if annotation is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        check(isinstance(value, (int, float)) and not isinstance(value, bool), name, "a number", value)
        check(math.isfinite(value), name, "a finite number", value)
        return float(value)
    if annotation is str:
        if isinstance(value, os.PathLike):  # output_dir=Path(...)
            return os.fspath(value)
        check(isinstance(value, str), name, "a string", value)
        return value
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


@functools.cache
def _hints(cls: type) -> dict:
    return typing.get_type_hints(cls, include_extras=True)


def coerce_fields(obj, owner: str = "") -> None:
    """Coerce every field of the frozen dataclass `obj` to its declared type, or raise a
    ConfigError naming it: the one place where config values are typed ("3" -> 3 for an int,
    2.5 or True for an int rejected, inf rejected for a float, a Literal's values only, "zz" for a
    bool rejected, a dict for a nested dataclass). Every config and hyper-parameter dataclass
    (TrainConfig, ExperimentConfig, each approach's and benchmark's Params) calls it first in
    `__post_init__`, so a field added later is checked too; range checks follow it."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        coerced = _coerce(value, hints[f.name], f"{owner}{f.name}")
        if coerced is not value:
            object.__setattr__(obj, f.name, coerced)


def build_params(cls: type, values: dict | None, owner: str) -> Any:
    """Instantiate the hyper-parameter dataclass `cls` from a dict; unknown keys are an error."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{owner}: unknown parameter(s) {', '.join(unknown)}; "
                          f"valid: {', '.join(fields) or '(none)'}")
    hints = _hints(cls)
    coerced = {k: _coerce(v, hints[k], f"{owner}.{k}") for k, v in values.items()}
    return cls(**coerced)


@dataclass(frozen=True)
class NoParams:
    """For components without hyper-parameters."""


@dataclass(frozen=True)
class TrainConfig:
    """The paper's training protocol (docs/original-code.md#training-loop): plain SGD, lr decay on a
    plateau, early stop."""

    epochs: int = 200
    batch_size: int = 64
    lr: float = 0.05
    lr_min: float = 1e-4
    lr_factor: float = 3.0
    lr_patience: int = 5
    clip_grad: float | None = None  # None: the approach's own default (10000, 100, ...)
    warmup_epochs: int = 0
    warmup_divisor: float = 1.0
    # "paper": divide the lr after `lr_patience` epochs without improvement and stop below lr_min.
    # "original-code": the original code's condition, which never decays (constant lr, all epochs).
    lr_schedule: Literal["paper", "original-code"] = "paper"
    eval_batch_size: int = 1024
    # The validation criterion, which decays the lr and picks the weights kept after each task, for
    # every approach. "ce": the task's cross-entropy (what is measured). "total": the approach's
    # training criterion (CE plus its penalty: EWC's, HAT's c·R, DWA's Eq. 7 terms, ...), the
    # original code's, whose penalty terms change scale across epochs and tasks. Recorded losses
    # (results.loss) are the task's cross-entropy either way.
    valid_loss: Literal["ce", "total"] = "ce"

    def __post_init__(self):
        coerce_fields(self, "train.")
        check(self.epochs >= 1, "train.epochs", "an integer >= 1", self.epochs)
        check(self.batch_size >= 1, "train.batch_size", "an integer >= 1", self.batch_size)
        check(self.lr > 0, "train.lr", "> 0", self.lr)
        check(self.lr_min >= 0, "train.lr_min", ">= 0", self.lr_min)
        check(self.lr_factor > 1, "train.lr_factor", "> 1", self.lr_factor)
        check(self.lr_patience >= 1, "train.lr_patience", "an integer >= 1", self.lr_patience)
        check(self.clip_grad is None or self.clip_grad > 0, "train.clip_grad", "> 0 or None",
              self.clip_grad)
        check(self.warmup_epochs >= 0, "train.warmup_epochs", "an integer >= 0", self.warmup_epochs)
        check(self.warmup_divisor >= 1, "train.warmup_divisor", ">= 1", self.warmup_divisor)
        check(self.lr_schedule in ("paper", "original-code"), "train.lr_schedule",
              "'paper' or 'original-code'", self.lr_schedule)
        check(self.eval_batch_size >= 1, "train.eval_batch_size", "an integer >= 1",
              self.eval_batch_size)


@dataclass(frozen=True)
class ExperimentConfig:
    """One run: a benchmark, an approach, a network, a seed. `approach_params` and
    `benchmark_params` are validated against the component's own parameter dataclass."""

    benchmark: str = "split-digits"
    approach: str = "sgd"
    network: str = "auto"  # "auto": the benchmark's network (mlp or alexnet)
    seed: int = 0
    device: str = "auto"
    data_dir: str | None = None
    download: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)
    approach_params: dict = field(default_factory=dict)
    benchmark_params: dict = field(default_factory=dict)
    network_params: dict = field(default_factory=dict)
    # "CONV[,CONVBIAS]:LINEAR[,LINEARBIAS]" (docs/original-code.md#command-line-and-initialisation)
    weight_init: str = "kaiming:xavier"
    output_dir: str = "results"
    name: str = ""
    max_tasks: int | None = None  # stop after this many tasks (the original code's test_mode)
    # Also keep the model's weights after every task (run folder, task-<t>.pt): what
    # dwa_core.diagnosis reads to measure how the weights and masks of earlier tasks moved.
    task_snapshots: bool = False
    # Where a run reads and writes, not what it computes: left out of `key()` and of the resume check.
    LOCATION_FIELDS: ClassVar[tuple[str, ...]] = ("output_dir", "device", "data_dir", "download",
                                                  "task_snapshots")

    def __post_init__(self):
        coerce_fields(self)
        check(self.seed >= 0, "seed", "an integer >= 0", self.seed)
        check(re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device) is not None,
              "device", "'auto', 'cpu', 'cuda', 'cuda:N' (N >= 0) or 'mps'", self.device)
        check(self.max_tasks is None or self.max_tasks >= 1, "max_tasks", "None or >= 1",
              self.max_tasks)
        check_path_component(self.name, "name")
        for name in ("approach_params", "benchmark_params", "network_params"):
            check(isinstance(getattr(self, name), dict), name, "a dict", getattr(self, name))
        from dwa_core.models.init import parse_weight_init  # validates the scheme string

        parse_weight_init(self.weight_init)

    def replace(self, **changes) -> ExperimentConfig:
        """A copy with some fields changed; `train` may be given as a dict of changes."""
        if isinstance(changes.get("train"), dict):
            changes["train"] = dataclasses.replace(self.train, **changes["train"])
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ExperimentConfig:
        """From a dict (a preset, the CLI, a results file); unknown keys are a ConfigError."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ConfigError(f"config: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(names)}")
        return cls(**values)  # __post_init__ types every field

    def key(self) -> str:
        """A short stable hash of everything that changes the numbers (not paths), the code's
        numerics version included (dwa_core.numerics): after a bump every run gets a new folder."""
        from dwa_core import numerics

        values = self.to_dict()
        for ignored in self.LOCATION_FIELDS:
            values.pop(ignored)
        values["numerics"] = numerics.VERSION
        text = json.dumps(values, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def run_name(self) -> str:
        suffix = f"_{self.name}" if self.name else ""
        return f"{self.benchmark}_{self.approach}_{self.seed}{suffix}_{self.key()}"
