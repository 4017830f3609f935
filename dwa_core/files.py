"""Configuration files and dotted keys: the one place that reads a TOML/JSON file of settings
(presets, sweep definitions, `--preset` files) and the one place that writes "train.lr" = value
into a nested dict of settings; and the checks of output paths that every entry point makes before
any work (check_output_dir, check_output_file)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import tomllib

from dwa_core.config import ConfigError

SUFFIXES = (".toml", ".json")


def load_config_file(path) -> dict:
    """The table of a .toml or .json file. Raises ConfigError naming the file when it does not exist,
    has another suffix, is not valid TOML/JSON (with the line and column), or does not hold a table."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ConfigError(f"{path}: a settings file must end in .toml or .json")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from err
    try:
        values = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: invalid {path.suffix[1:].upper()}: {err}") from err
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a table of settings, got {type(values).__name__}")
    return values


def set_dotted(values: dict, key: str, value) -> None:
    """values["a"]["b"] = value for key "a.b", creating the groups on the way. Raises ConfigError
    when a group on the way is a plain value."""
    *parents, last = key.split(".")
    for parent in parents:
        values = values.setdefault(parent, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{key}: {parent} is not a group of settings")
    values[last] = value


def merge(values: dict, overrides: dict) -> dict:
    """A deep copy of `values` with `overrides` merged in (tables recursively, dotted keys such as
    "train.lr" expanded); `values` is left unchanged."""
    out = copy.deepcopy(values)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            set_dotted(out, key, copy.deepcopy(value))
    return out


def check_output_dir(path, what: str) -> None:
    """Raise ConfigError, naming `what` (the option, e.g. "--out") and the path, unless `path` is a
    writable folder or can be created as one: not when it, or a parent on the way, is a file, nor
    when the nearest existing folder is not writable. Nothing is created."""
    path = Path(path).expanduser()
    existing = next((p for p in (path, *path.parents) if p.exists() or p.is_symlink()), Path("."))
    if not existing.is_dir():
        where = "" if existing == path else f" cannot be created: {existing}"
        raise ConfigError(f"{what}: {path}{where} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == path else f" cannot be created: {existing}"
        raise ConfigError(f"{what}: {path}{where} is not writable (permission denied)")


def check_output_file(path, what: str) -> None:
    """Raise ConfigError, naming `what` and the path, unless `path` can be written as a file: not a
    folder, not a read-only file, and in a folder that exists or can be created."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"{what}: {path} is a folder, not a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{what}: {path} is not writable (permission denied)")
    try:
        check_output_dir(path.parent, what)
    except ConfigError as err:
        raise ConfigError(f"{what}: {path} cannot be written: {str(err).removeprefix(what + ': ')}") from None
