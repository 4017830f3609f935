"""The explorer's session: the finished runs, the cache that replays a configuration at once, and
their comparison table (differences from run 1, accuracy, BWT, forgetting, HAT's rho). A run is
paired with its random/joint references by aggregate.py's rule (`aggregate.reference_key`: same
benchmark, its parameters, seed, number of tasks and network), as every sweep and figure is."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dwa_core import aggregate, metrics, numerics
from dwa_core.config import ExperimentConfig
from dwa_core.results import Results
from dwa_core.runs import RESULTS
from dwa_core.widgets.labels import differences

COLUMNS = ["run", "approach", "differs from run 1", "final avg acc", "BWT", "forgetting", "rho", "seconds"]


@dataclasses.dataclass
class Run:
    """A finished run of the session."""

    config: ExperimentConfig
    results: Results
    seconds: float
    images: dict = dataclasses.field(default_factory=dict)  # {output name: its outputs}, for replays


class Session:
    """The runs of one explorer; `results_dir` (optional): where finished runs are read and saved."""

    def __init__(self, results_dir: Path | None = None):
        self.results_dir = results_dir
        self.runs: list[Run] = []
        self.cache: dict[str, Run] = {}

    def cached(self, cfg: ExperimentConfig) -> Run | None:
        """A finished run of `cfg` from this session or from results_dir (never of other
        numerics), else None."""
        if cfg.key() in self.cache:
            return self.cache[cfg.key()]
        path = None if self.results_dir is None else self.results_dir / cfg.run_name() / RESULTS
        if path is not None and path.exists():
            res = Results.load(path)
            if res.finished and numerics.mismatch(res.numerics) is None:
                self.cache[cfg.key()] = Run(cfg, res, float(sum(res.task_seconds)))
                return self.cache[cfg.key()]
        return None

    def finished(self, run: Run) -> None:
        """Cache a run just trained, and save its results in results_dir when there is one."""
        self.cache[run.config.key()] = run
        if self.results_dir is not None:
            run.results.save(self.results_dir / run.config.run_name() / RESULTS)

    def add(self, run: Run) -> bool:
        """Add `run` to the table; False when a run of the same configuration is already in it."""
        if any(r.config.key() == run.config.key() for r in self.runs):
            return False
        self.runs.append(run)
        return True

    def table(self):
        """The runs as a DataFrame (COLUMNS): what differs from run 1 (labels.differences), final
        average accuracy, BWT, forgetting, HAT's rho (mean over tasks; NaN unless the session holds
        the run's random and joint references, see the module docstring) and training time (s)."""
        import pandas as pd

        index = aggregate.reference_index([r.results for r in self.runs])
        rows = []
        for i, run in enumerate(self.runs):
            acc = run.results.acc_matrix()
            diff = differences(run.config, self.runs[0].config)
            rows.append({"run": i + 1, "approach": run.config.approach,
                         "differs from run 1": ", ".join(diff) or "-",
                         "final avg acc": metrics.average_accuracy(acc),
                         "BWT": metrics.backward_transfer(acc), "forgetting": metrics.forgetting(acc),
                         "rho": rho(run.results, index), "seconds": round(run.seconds, 1)})
        return pd.DataFrame(rows, columns=COLUMNS)

    def export(self, path: Path) -> Path:
        """Write the table as CSV at `path` (folders created); returns the path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.table().to_csv(path, index=False)
        return path


def rho(results: Results, index: dict) -> float:
    """HAT's forgetting ratio of a run, mean over tasks, against its references in `index`
    (aggregate.reference_index); NaN when either is missing."""
    random, joint = aggregate.references_of(results, index)
    if random is None or joint is None:
        return float("nan")
    return float(np.mean(metrics.forgetting_ratio(results.acc_matrix(), random, joint)))

