"""Results of one run: saved as JSON (atomic write), validated on load, tidy pandas frames."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1


class ResultsError(ValueError):
    """A results file that is missing fields or inconsistent."""


def package_versions() -> dict[str, str]:
    import numpy
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    try:
        import torchvision

        versions["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover - torchvision is a dependency
        pass
    from dwa_core import __version__

    versions["dwa_core"] = __version__
    return versions


@dataclass
class Results:
    """acc[t][u] / loss[t][u]: test accuracy / loss on task u after training task t (u <= t)."""

    config: dict
    task_names: list[str]
    task_classes: list[int]
    acc: list[list[float]]
    loss: list[list[float]]
    history: list[list[dict]] = field(default_factory=list)  # per task, per epoch
    task_seconds: list[float] = field(default_factory=list)
    versions: dict = field(default_factory=package_versions)
    device: str = "cpu"
    completed_tasks: int = 0
    extras: dict = field(default_factory=dict)  # approach-specific data (e.g. DWA introspection)

    @classmethod
    def empty(cls, config: dict, task_names, task_classes, device: str) -> Results:
        T = len(task_names)
        return cls(config, list(task_names), list(task_classes), [[0.0] * T for _ in range(T)],
                   [[0.0] * T for _ in range(T)], [], [], device=device)

    @property
    def n_tasks(self) -> int:
        return len(self.task_names)

    @property
    def finished(self) -> bool:
        return self.completed_tasks == self.n_tasks

    def acc_matrix(self) -> np.ndarray:
        return np.array(self.acc, dtype=float)

    def loss_matrix(self) -> np.ndarray:
        return np.array(self.loss, dtype=float)

    # ---- persistence -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"schema": SCHEMA_VERSION, **asdict(self)}

    def save(self, path) -> Path:
        """Write JSON atomically (temp file + rename): a crash never leaves half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(self.to_dict(), f, indent=1)
        os.replace(tmp, path)
        return path

    @classmethod
    def from_dict(cls, data: dict) -> Results:
        if data.get("schema") != SCHEMA_VERSION:
            raise ResultsError(f"unsupported results schema {data.get('schema')!r} "
                               f"(expected {SCHEMA_VERSION})")
        required = ("config", "task_names", "task_classes", "acc", "loss")
        missing = [k for k in required if k not in data]
        if missing:
            raise ResultsError(f"results are missing {', '.join(missing)}")
        T = len(data["task_names"])
        for key in ("acc", "loss"):
            matrix = data[key]
            if len(matrix) != T or any(len(row) != T for row in matrix):
                raise ResultsError(f"{key} must be a {T}x{T} matrix")
        known = {k: v for k, v in data.items() if k != "schema"}
        return cls(**known)

    @classmethod
    def load(cls, path) -> Results:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise ResultsError(f"{path}: not valid JSON ({err})") from err
        return cls.from_dict(data)

    def save_text(self, path) -> Path:
        """The original T x T `%.4f` text format (docs/original-code.md#metrics-and-figures)."""
        np.savetxt(path, self.acc_matrix(), fmt="%.4f", delimiter=" ")
        return Path(path)

    # ---- tidy frames ------------------------------------------------------------------------------
    def frame(self):
        """One row per (trained_through, evaluated) pair with u <= t."""
        import pandas as pd

        rows = [{"approach": self.config.get("approach"), "benchmark": self.config.get("benchmark"),
                 "seed": self.config.get("seed"), "trained_through": t, "task": u,
                 "task_name": self.task_names[u], "acc": self.acc[t][u], "loss": self.loss[t][u]}
                for t in range(self.completed_tasks) for u in range(t + 1)]
        return pd.DataFrame(rows)
