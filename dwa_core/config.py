"""Frozen, validated configuration: ExperimentConfig holds a TrainConfig and the parameters of
the benchmark, the approach and the network (each validated by that component's own declaration).

Every field is declared once with `fields.param` (default, type, bounds, documentation, source)
and validated by `fields.validate` in `__post_init__`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import typing
from dataclasses import asdict, dataclass
from typing import ClassVar, Literal

from dwa_core.coerce import (  # noqa: F401  (re-exported: the config API's errors and types)
    Bounds,
    ConfigError,
    DropRate,
    PositiveFloat,
    Size,
    build_params,
    check,
    check_path_component,
)
from dwa_core.fields import param, validate


@dataclass(frozen=True)
class NoParams:
    """For components without hyper-parameters."""


WeightScheme = Literal["kaiming", "xavier", "normal", "uniform", "ones", "zeros", "pytorch"]


def parse_weight_init(spec: str, name: str = "weight_init") -> dict[str, str]:
    """"CONV[,CONVBIAS]:LINEAR[,LINEARBIAS]" -> {conv, conv_bias, linear, linear_bias}, each a
    WeightScheme (models/init.py applies them). A bias not given is "zeros", except after a
    "pytorch" weight, whose bias is PyTorch's too; "pytorch" alone means "pytorch:pytorch".
    Raises ConfigError on any other form."""
    if spec == "pytorch":
        spec = "pytorch:pytorch"
    parts = spec.split(":") if isinstance(spec, str) else []
    if len(parts) != 2:
        raise ConfigError(f"{name}: must look like 'kaiming:xavier' or "
                          f"'kaiming,zeros:xavier,zeros', got {spec!r}")
    schemes, out = typing.get_args(WeightScheme), {}
    for kind, part in zip(("conv", "linear"), parts):
        weight, _, bias = part.partition(",")
        default_bias = "pytorch" if weight == "pytorch" else "zeros"
        for key, scheme in ((kind, weight), (f"{kind}_bias", bias or default_bias)):
            if scheme not in schemes:
                raise ConfigError(f"{name}: unknown scheme {scheme!r}; valid: {', '.join(schemes)}")
            out[key] = scheme
    return out


def _device(value: str, name: str) -> None:
    check(re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value) is not None, name,
          "'auto', 'cpu', 'cuda', 'cuda:N' (N >= 0) or 'mps'", value)


def _is_dict(value, name: str) -> None:
    check(isinstance(value, dict), name, "a dict", value)


@dataclass(frozen=True)
class TrainConfig:
    """The paper's training protocol (paper §4.3, the HAT paper's; docs/original-code.md#training-loop):
    plain SGD, lr decay on a plateau of the validation loss, early stop. `code_value`s: the values
    the original code's DWA scripts ran with (the `original-code` preset)."""

    epochs: int = param(200, bounds=Bounds(1), code_value=200,
                        doc="most epochs per task (early stop may end a task sooner)")
    batch_size: int = param(64, bounds=Bounds(1), code_value=32,
                            source="HAT paper / original BaseApproach (DWA's 32: preset 'paper')",
                            doc="training samples per SGD step")
    lr: float = param(0.05, bounds=Bounds(0, low_open=True), code_value=0.05,
                      source="HAT paper, original run.py",
                      doc="initial learning rate of plain SGD")
    lr_min: float = param(1e-4, bounds=Bounds(0), source="HAT paper",
                          doc="a task stops once the lr falls below this")
    lr_factor: float = param(3.0, bounds=Bounds(1, low_open=True), source="HAT paper",
                             doc="the lr is divided by this after lr_patience epochs without improvement")
    lr_patience: int = param(5, bounds=Bounds(1), source="HAT paper",
                             doc="epochs without a better validation loss before the lr is divided")
    clip_grad: float | None = param(None, bounds=Bounds(0, low_open=True),
                                    doc="gradient-norm clip; None: the approach's own default "
                                        "(10000, 100, ...)")
    warmup_epochs: int = param(0, bounds=Bounds(0), code_value=10,
                               source="HAT paper (DWA's 10 epochs at lr/750: preset 'paper')",
                               doc="first epochs at lr / warmup_divisor, without lr decay")
    warmup_divisor: float = param(1.0, bounds=Bounds(1), code_value=750,
                                  doc="the lr is divided by this during warm-up")
    lr_schedule: Literal["paper", "original-code"] = param(
        "paper", original="original-code",
        what="the lr decay condition never fires: constant lr for all epochs, no early stop",
        doc="'paper': divide the lr after lr_patience epochs without improvement and stop below lr_min; "
            "'original-code': the original code's condition, which never decays (constant lr, all epochs)")
    eval_batch_size: int = param(1024, bounds=Bounds(1),
                                 doc="samples per evaluation batch (no effect on numbers)")
    valid_loss: Literal["ce", "total"] = param(
        "ce", original="total", source="the task's cross-entropy for every approach (switch: 'total')",
        what="validation loss = the training criterion with its penalty (for DWA the σ-ramped, "
             "anchor-dependent Eq. 7 total, which can keep an unlearned epoch)",
        doc="the validation criterion, which decays the lr and picks the weights kept after each task: "
            "'ce', the task's cross-entropy; 'total', the approach's training criterion with its "
            "penalty (the original code's). Recorded losses are the cross-entropy either way")

    def __post_init__(self):
        validate(self, "train.")


@dataclass(frozen=True)
class ExperimentConfig:
    """One run: a benchmark, an approach, a network, a seed. `approach_params`,
    `benchmark_params` and `network_params` are validated against the component's own declaration
    when the run is built (experiment.validate)."""

    benchmark: str = param("split-digits", doc="the benchmark's name (data.names())")
    approach: str = param("sgd", doc="the approach's name (approaches.names())")
    network: str = param("auto", doc="'mlp', 'alexnet' or 'auto' (the benchmark's network)")
    seed: int = param(0, bounds=Bounds(0), doc="seeds the weights, the data order and the task order")
    device: str = param("auto", check=_device,
                        doc="'auto' (cuda, then mps, then cpu), 'cpu', 'cuda', 'cuda:N' or 'mps'")
    data_dir: str | None = param(None,
                                 doc="where datasets are read from (None: $DWA_DATA or the cache folder)")
    download: bool = param(False, doc="download a dataset that is not found locally")
    train: TrainConfig = param(default_factory=TrainConfig, doc="the training protocol (TrainConfig)")
    approach_params: dict = param(default_factory=dict, check=_is_dict,
                                  doc="the approach's hyper-parameters (its Params)")
    benchmark_params: dict = param(default_factory=dict, check=_is_dict,
                                   doc="the benchmark's parameters (its Params)")
    network_params: dict = param(default_factory=dict, check=_is_dict, doc="the network's keyword options")
    weight_init: str = param("kaiming:xavier", check=parse_weight_init,
                             source="paper / every original script (He-normal convs, Xavier-uniform dense)",
                             doc="'CONV[,CONVBIAS]:LINEAR[,LINEARBIAS]' (docs/original-code.md#command-line-"
                                 "and-initialisation); 'pytorch' = PyTorch's default, what the original code "
                                 "did without --weight_init")
    output_dir: str = param("results", doc="the folder that holds the run folders")
    name: str = param("", check=check_path_component, doc="a suffix of the run's folder name")
    max_tasks: int | None = param(None, bounds=Bounds(1),
                                  doc="stop after this many tasks (the original code's test_mode)")
    task_snapshots: bool = param(False, doc="also keep the weights after every task (run folder, "
                                            "task-<t>.pt), which dwa_core.diagnosis reads")
    # Where a run reads and writes, not what it computes: left out of `key()` and of the resume check.
    LOCATION_FIELDS: ClassVar[tuple[str, ...]] = ("output_dir", "device", "data_dir", "download",
                                                  "task_snapshots")

    def __post_init__(self):
        validate(self)

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
