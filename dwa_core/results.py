"""Results of one run: saved as JSON (atomic write), validated on load, tidy pandas frames."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1


class ResultsError(ValueError):
    """A results file that is missing fields or inconsistent."""


class WriteError(OSError):
    """A file of a run could not be written (disk full, read-only, ...): names the file and why."""

    def __str__(self) -> str:  # the one line, without OSError's "[Errno N] ... : 'path'" decoration
        return self.strerror


def atomic_write(path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename, so a crash
    never leaves half a file; the file gets the mode of any new file (0644 under umask 022). On an
    OS error the temporary file is removed and a WriteError names `path` and the reason."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        reason = err.strerror or str(err)
        raise WriteError(err.errno, f"could not write {path}: {reason}", str(path)) from err
    return path


def remove_stale_temporaries(folder) -> list[Path]:
    """Remove the temporary files of `atomic_write` (`<name>.<pid>.tmp`) in `folder` that a killed
    write left behind: those of a process that no longer runs, or of this process (which writes
    none there when it calls this, holding the folder's lock). Returns the paths removed."""
    removed = []
    for tmp in Path(folder).glob("*.tmp"):
        pid = tmp.suffixes[-2][1:] if len(tmp.suffixes) >= 2 else ""
        if tmp.is_file() and pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, another user's
        return True
    return True


def numerics_identity() -> dict:
    """dwa_core.numerics.identity(), imported when called (so `python -m dwa_core.numerics` runs
    without the package having imported it first)."""
    from dwa_core import numerics

    return numerics.identity()


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
    # valid_acc[t][u]: validation accuracy on task u after task t, the matrix that selects
    # hyper-parameters (never the test one); empty in files written before it existed.
    valid_acc: list[list[float]] = field(default_factory=list)
    # {"version": numerics.VERSION, "package": dwa_core version} of the code that computed the
    # numbers; None for a file written before it was recorded (numerics unknown: never reused).
    numerics: dict | None = field(default_factory=numerics_identity)
    # Task-agnostic evaluation (no task id at test time; `Approach.task_agnostic`): after task t, each
    # test sample of task u is given to the head, among 0..t, with the most confident prediction.
    # agnostic_acc[t][u]: accuracy on task u so; task_inference_acc[t][u]: the fraction of task u's
    # samples given to head u. NaN where an approach does not define it; empty in older files.
    agnostic_acc: list[list[float]] = field(default_factory=list)
    task_inference_acc: list[list[float]] = field(default_factory=list)

    OPTIONAL = ("valid_acc", "numerics", "agnostic_acc", "task_inference_acc")  # older files lack them

    @classmethod
    def empty(cls, config: dict, task_names, task_classes, device: str) -> Results:
        T = len(task_names)
        return cls(config, list(task_names), list(task_classes), [[0.0] * T for _ in range(T)],
                   [[0.0] * T for _ in range(T)], [], [], device=device,
                   valid_acc=[[0.0] * T for _ in range(T)],
                   agnostic_acc=[[0.0] * T for _ in range(T)],
                   task_inference_acc=[[0.0] * T for _ in range(T)])

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

    def agnostic_acc_matrix(self) -> np.ndarray | None:
        """agnostic_acc[t][u] as a (T, T) array, or None for a file written before it was recorded."""
        return np.array(self.agnostic_acc, dtype=float) if self.agnostic_acc else None

    def task_inference_matrix(self) -> np.ndarray | None:
        """task_inference_acc[t][u] as a (T, T) array, or None for an older file."""
        return np.array(self.task_inference_acc, dtype=float) if self.task_inference_acc else None

    def valid_acc_matrix(self) -> np.ndarray | None:
        """valid_acc[t][u] as a (T, T) array, or None for a file written before it was recorded."""
        return np.array(self.valid_acc, dtype=float) if self.valid_acc else None

    # ---- persistence -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"schema": SCHEMA_VERSION, **asdict(self)}

    def save(self, path) -> Path:
        """Write JSON atomically (`atomic_write`): a crash never leaves half a file."""
        return atomic_write(path, json.dumps(self.to_dict(), indent=1).encode())

    @classmethod
    def from_dict(cls, data: dict) -> Results:
        """Validate and build: every field present, no unknown one, matrices T x T, 0 <= completed
        tasks <= T. Raises ResultsError naming the first problem."""
        if not isinstance(data, dict):
            raise ResultsError(f"results must be a JSON object, got {type(data).__name__}")
        if data.get("schema") != SCHEMA_VERSION:
            raise ResultsError(f"unsupported results schema {data.get('schema')!r} "
                               f"(expected {SCHEMA_VERSION})")
        fields = [f.name for f in dataclasses.fields(cls)]
        missing = [k for k in fields if k not in data and k not in cls.OPTIONAL]
        unknown = sorted(set(data) - set(fields) - {"schema"})
        if missing or unknown:
            problems = ([f"missing {', '.join(missing)}"] if missing else []) + \
                       ([f"unknown {', '.join(unknown)}"] if unknown else [])
            raise ResultsError(f"results fields: {'; '.join(problems)} (expected {', '.join(fields)})")
        T = len(data["task_names"])
        for key in ("acc", "loss", "valid_acc", "agnostic_acc", "task_inference_acc"):
            matrix = data.get(key, [])
            if key in cls.OPTIONAL and not matrix:
                continue
            if len(matrix) != T or any(len(row) != T for row in matrix):
                raise ResultsError(f"{key} must be a {T}x{T} matrix")
        done = data["completed_tasks"]
        if not isinstance(done, int) or isinstance(done, bool) or not 0 <= done <= T:
            raise ResultsError(f"completed_tasks must be an integer in 0..{T}, got {done!r}")
        if len(data["task_classes"]) != T:
            raise ResultsError(f"task_classes must have {T} entries, got {len(data['task_classes'])}")
        if not isinstance(data.get("numerics", {}), (dict, type(None))):
            raise ResultsError(f"numerics must be an object, got {data['numerics']!r}")
        values = {k: data[k] for k in fields if k in data}
        values.setdefault("numerics", None)  # a file written before it was recorded: unknown
        return cls(**values)

    @classmethod
    def load(cls, path) -> Results:
        """Read and validate a results.json; every error names the file."""
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise ResultsError(f"{path}: not valid JSON ({err})") from err
        except UnicodeDecodeError as err:
            raise ResultsError(f"{path}: not a text file ({err})") from err
        try:
            return cls.from_dict(data)
        except ResultsError as err:
            raise ResultsError(f"{path}: {err}") from err

    def save_text(self, path) -> Path:
        """The original T x T `%.4f` text format (docs/original-code.md#metrics-and-figures), written
        atomically."""
        text = io.StringIO()
        np.savetxt(text, self.acc_matrix(), fmt="%.4f", delimiter=" ")
        return atomic_write(path, text.getvalue().encode())

    # ---- tidy frames ------------------------------------------------------------------------------
    def frame(self):
        """One row per (trained_through, evaluated) pair with u <= t."""
        import pandas as pd

        rows = [{"approach": self.config.get("approach"), "benchmark": self.config.get("benchmark"),
                 "seed": self.config.get("seed"), "trained_through": t, "task": u,
                 "task_name": self.task_names[u], "acc": self.acc[t][u], "loss": self.loss[t][u]}
                for t in range(self.completed_tasks) for u in range(t + 1)]
        return pd.DataFrame(rows)
