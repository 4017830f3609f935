"""DWA presets: partial ExperimentConfig dicts stored as JSON next to this file (paper, final-warm,
original-code). Keys starting with '_' are comments and are dropped. They hold full-size settings;
a smoke run overrides train.epochs (and max_tasks, data size)."""

from __future__ import annotations

from pathlib import Path

from dwa_core.files import load_config_file

HERE = Path(__file__).parent


def list_presets() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.json"))


def load_preset(name_or_path: str) -> dict:
    """A preset by name (see list_presets) or a path to a JSON file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = HERE / f"{name_or_path}.json"
    if not path.is_file():
        raise FileNotFoundError(f"unknown preset {name_or_path!r}; known: {', '.join(list_presets())}")
    data = load_config_file(path)
    return {k: v for k, v in data.items() if not k.startswith("_")}
