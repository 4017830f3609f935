"""Sweeps: lists of ExperimentConfig built from grids, random draws or TOML/JSON definitions
(`define`), run locally or on Ray with resume and failure isolation (`execute`), and aggregated
over seeds (`dwa_core.aggregate`, re-exported here). The command line is `python -m dwa_core sweep`
(cli/sweep.py)."""

from dwa_core.aggregate import (
    METRICS,
    REFERENCES,
    label,
    load_results,
    reference_key,
    related_work_table,
    results_frame,
    summarize,
    to_markdown,
)
from dwa_core.runs import run_dir
from dwa_core.sweep.define import (
    SWEEPS_DIR,
    SweepDefinition,
    grid,
    load_definition,
    sample_space,
    unique,
    with_fields,
    with_references,
    with_seeds,
)
from dwa_core.sweep.execute import ERROR, default_workers, run_one, run_sweep, tune_search

__all__ = ["METRICS", "REFERENCES", "label", "load_results", "reference_key", "related_work_table",
           "results_frame", "summarize", "to_markdown", "run_dir", "SWEEPS_DIR", "SweepDefinition",
           "grid", "load_definition", "sample_space", "unique", "with_fields", "with_references",
           "with_seeds", "ERROR", "default_workers", "run_one", "run_sweep", "tune_search"]
