"""A configuration that travels: `config_values` (the explorer's config as a partial
ExperimentConfig dict, what the presets hold), `to_toml` / `save_config` (the file
`python -m dwa_core run --preset FILE.toml` and the explorer's Load read, `files.load_config_file`)
and `cli_command`, the equivalent `python -m dwa_core run ...` line (its arguments parse to a config
with the same `key()`)."""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
from pathlib import Path

from dwa_core.config import ExperimentConfig, TrainConfig

TOP = ("benchmark", "approach", "network", "seed")
GROUPS = {"approach_params": "--param", "benchmark_params": "--benchmark-param",
          "network_params": "--network-param"}


def config_values(cfg: ExperimentConfig) -> dict:
    """The settings of `cfg` that the explorer's controls set: the top row, the train fields that
    differ from TrainConfig's defaults, and the three parameter groups (as `to_dict` writes them)."""
    d, default = cfg.to_dict(), dataclasses.asdict(TrainConfig())
    out = {k: d[k] for k in TOP}
    out["train"] = {k: v for k, v in d["train"].items() if v != default[k]}
    out.update({group: d[group] for group in GROUPS})
    return out


def _toml_value(value) -> str:
    if value is None:
        return '"None"'  # TOML has no null; the controls and coercion read "None" as None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def to_toml(values: dict, prefix: str = "") -> str:
    """`values` (a nested dict of settings) as TOML: plain keys first, then one table per dict."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in values.items() if not isinstance(v, dict)]
    for k, v in values.items():
        if isinstance(v, dict):
            lines += ["", f"[{prefix}{k}]", to_toml(v, f"{prefix}{k}.").strip("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def save_config(cfg: ExperimentConfig, path) -> Path:
    """Write `config_values(cfg)` as TOML at `path` (folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# an explorer configuration (key {cfg.key()}); "
                    f"python -m dwa_core run --preset {path.name}\n" + to_toml(config_values(cfg)))
    return path


def _cli_value(value) -> str:
    """A value as cli/run.py's _literal reads it back: JSON, except a string that JSON would not keep."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except json.JSONDecodeError:
            return value
        return json.dumps(value)  # "1" or "true" as text stays text
    return json.dumps(value)


def cli_command(cfg: ExperimentConfig) -> str:
    """`python -m dwa_core run ...` training the same configuration (same `key()`), in the same
    output folder (so it resumes a run the explorer stopped)."""
    values = config_values(cfg)
    args = ["python", "-m", "dwa_core", "run"]
    for k in TOP:
        args += [f"--{k}", str(values[k])]
    args += [a for k, v in values["train"].items() for a in ("--set", f"train.{k}={_cli_value(v)}")]
    for group, flag in GROUPS.items():
        args += [a for k, v in values[group].items() for a in (flag, f"{k}={_cli_value(v)}")]
    args += ["--device", cfg.device, "--output-dir", cfg.output_dir]
    if cfg.data_dir:
        args += ["--data-dir", str(cfg.data_dir)]
    return " ".join(shlex.quote(a) for a in args)
