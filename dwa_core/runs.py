"""Where a run lives and what became of it: the run directory, "is this run finished", and the
outcome record a sweep keeps for every run."""

from __future__ import annotations

from pathlib import Path

RESULTS = "results.json"


def run_dir(cfg, output_dir=None) -> Path:
    """output_dir (default: cfg.output_dir) / cfg.run_name(): the folder holding the run's
    results.json, checkpoint and acc.txt."""
    return Path(cfg.output_dir if output_dir is None else output_dir) / cfg.run_name()


def is_finished(where) -> bool:
    """True when `where`/results.json holds every task of the run, computed by this code's numerics
    (dwa_core.numerics). A missing, unreadable or corrupt file, or one of other or unknown numerics,
    is "not finished" (the run is trained or resumed again), never an error."""
    from dwa_core import numerics
    from dwa_core.results import Results, ResultsError

    try:
        results = Results.load(Path(where) / RESULTS)
    except (OSError, ResultsError, ValueError):
        return False
    return results.finished and numerics.mismatch(results.numerics) is None


def outcome(cfg, output_dir, status: str, error: str | None = None, **extra) -> dict:
    """The record of one run of a sweep: key, run name, run_dir, status ("trained" | "resumed" |
    "cached" | "failed"), error (None unless failed) and any extra fields (e.g. seconds)."""
    return {"key": cfg.key(), "run": cfg.run_name(), "run_dir": str(run_dir(cfg, output_dir)),
            "status": status, "error": error, **extra}
