"""Aggregation of finished runs: per-run metrics (from metrics.py), the mean and 95 % Student-t
interval over seeds, the related-work table, and the one rule that pairs a run with its `random`
and `joint` reference runs (HAT's forgetting ratio, paper Fig. 6). Used by sweeps, figures and plots."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from dwa_core import metrics
from dwa_core.config import ExperimentConfig
from dwa_core.runs import RESULTS, run_dir

log = logging.getLogger(__name__)

REFERENCES = ("random", "joint")
# valid_avg_acc is what a point of a grid is chosen by; the others are reported (on test)
METRICS = ("valid_avg_acc", "avg_acc", "bwt", "forgetting", "rho", "retention", "percent_forgotten")


# ---- reference runs --------------------------------------------------------------------------
def reference_key(cfg: ExperimentConfig | dict) -> str:
    """What a run shares with its random/joint references: benchmark, its params, seed, number of
    tasks and network. Two runs with the same key are measured against the same reference pair."""
    d = cfg.to_dict() if isinstance(cfg, ExperimentConfig) else cfg
    return json.dumps([d["benchmark"], d.get("benchmark_params", {}), d["seed"], d.get("max_tasks"),
                       d.get("network", "auto")], sort_keys=True, default=str)


def reference_index(results) -> dict:
    """{(reference_key, "random" | "joint"): acc matrix} of the finished reference runs in `results`."""
    return {(reference_key(r.config), r.config["approach"]): r.acc_matrix() for r in results
            if r.finished and r.config["approach"] in REFERENCES}


def references_of(result, index: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(random, joint) acc matrices of `result`'s references in `index` (None where missing)."""
    key = reference_key(result.config)
    return index.get((key, "random")), index.get((key, "joint"))


def paired_references(runs, random, joint) -> list[tuple[np.ndarray, np.ndarray]]:
    """(random, joint) acc matrices for each Results of `runs`. random/joint: a list of reference
    Results, matched to each run by reference_key (benchmark, its params, seed, tasks, network), or
    a single Results that serves every run. Raises ValueError naming a run without its reference."""
    pairs = []
    for r in runs:
        pair = tuple(_reference_for(r, refs, name) for refs, name in ((random, "random"), (joint, "joint")))
        pairs.append(pair)
    return pairs


def _reference_for(run, refs, name: str) -> np.ndarray:
    if not isinstance(refs, (list, tuple)):
        return refs.acc_matrix()
    key = reference_key(run.config)
    for ref in refs:
        if reference_key(ref.config) == key:
            return ref.acc_matrix()
    raise ValueError(f"no {name} reference run for {run.config['approach']} on {run.config['benchmark']} "
                     f"(seed {run.config['seed']}) among {len(refs)} {name} run(s)")


# ---- loading ---------------------------------------------------------------------------------
def load_results(output_dir, cfgs=None, problems: list | None = None) -> list:
    """Results of every run directory under output_dir (or only of `cfgs`), unfinished runs too,
    each read by `experiment.load_run` (results.json, else rebuilt from the run's checkpoint), its
    config too (an older format, e.g. a renamed field: rebuilt from the checkpoint when that one
    reads, see `readable_run`). A run that cannot be read is skipped with a warning and, when
    `problems` is a list, recorded there as (path, reason): one unreadable run never stops the
    aggregation of the rest. A run computed by other (or unknown) numerics (dwa_core.numerics) is
    skipped with a warning naming its file: runs of two versions of the code are never mixed."""
    from dwa_core import numerics
    from dwa_core.experiment import CHECKPOINT
    from dwa_core.results import ResultsError

    if cfgs is not None:
        dirs = [run_dir(c, output_dir) for c in cfgs]
    else:
        dirs = sorted({p.parent for name in (RESULTS, CHECKPOINT)
                       for p in Path(output_dir).glob(f"*/{name}")})
    out = []
    for where in (d for d in dirs if (d / RESULTS).exists() or (d / CHECKPOINT).exists()):
        try:
            result = readable_run(where)
        except (OSError, ResultsError, ValueError, TypeError, KeyError, IndexError) as err:
            path = where / RESULTS
            log.warning("skipping %s: %s", path, err)
            if problems is not None:
                problems.append((path, f"{type(err).__name__}: {err}"))
            continue
        changed = numerics.mismatch(result.numerics)
        if changed:
            log.warning("skipping %s: computed by other numerics (%s); rerun it", where / RESULTS, changed)
            continue
        out.append(result)
    return out


def readable_run(where):
    """`experiment.load_run(where)` whose config this version reads (ExperimentConfig.from_dict);
    when it does not (results.json of an older format), the results in the run's checkpoint, if
    their config reads (results.json is then rewritten from them). Raises ResultsError naming the
    file otherwise."""
    import contextlib

    from dwa_core.config import ConfigError
    from dwa_core.experiment import CHECKPOINT, load_checkpoint, load_run
    from dwa_core.results import Results, ResultsError

    results = load_run(where)
    try:
        ExperimentConfig.from_dict(results.config)
        return results
    except ConfigError as err:
        problem = f"{Path(where) / RESULTS}: a config this version cannot read ({err})"
    if not (Path(where) / CHECKPOINT).is_file():
        raise ResultsError(f"{problem}, and no {CHECKPOINT} to rebuild it from")
    try:
        rebuilt = Results.from_dict(load_checkpoint(Path(where) / CHECKPOINT)["results"])
        ExperimentConfig.from_dict(rebuilt.config)
    except ConfigError as err:
        raise ResultsError(f"{problem}; its {CHECKPOINT} too") from err
    log.warning("%s; rebuilt from %s", problem, CHECKPOINT)
    with contextlib.suppress(OSError):
        rebuilt.save(Path(where) / RESULTS)
    return rebuilt


# ---- per-run metrics -------------------------------------------------------------------------
def label(config: dict) -> str:
    """approach[name](param=value, ...): what tells runs of one sweep apart, seed excluded."""
    text = config["approach"] + (f"[{config['name']}]" if config.get("name") else "")
    params = config.get("approach_params") or {}
    if params:
        text += "(" + ", ".join(f"{k}={v}" for k, v in sorted(params.items())) + ")"
    return text


def _identity(result) -> dict:
    cfg = ExperimentConfig.from_dict(result.config)
    c = cfg.to_dict()  # every field, defaults filled in
    return {"benchmark": cfg.benchmark, "approach": cfg.approach, "label": label(c),
            "variant": cfg.replace(seed=0).key(),  # the config without its seed
            "name": cfg.name, "seed": cfg.seed, "run": cfg.run_name()}


def valid_average(result) -> float:
    """The selection score of one run: the final average validation accuracy, valid_acc[T-1]
    averaged over the tasks (never a test number); NaN for an unfinished run or one recorded
    before validation accuracy was."""
    valid = result.valid_acc_matrix()
    return float(valid[-1].mean()) if valid is not None and result.finished else float("nan")


def validation_score(result) -> float:
    """The selection score of one finished run (a comparison's, a Ray Tune search's): mean over
    tasks u of valid_acc[T-1][u]. Raises ValueError for a run recorded before validation accuracy
    was (no valid_acc)."""
    score = valid_average(result)
    if np.isnan(score):
        raise ValueError(f"{result.config.get('approach')} (seed {result.config.get('seed')}): no "
                         f"final validation accuracies to select on")
    return score


def run_metrics(acc: np.ndarray, random_acc=None, joint_acc=None) -> dict:
    """The final metrics of one T x T accuracy matrix: avg_acc, bwt, forgetting, and against the
    references rho (final), retention (mean over t >= 1, Fig. 6) and percent_forgotten (NaN without
    both references, or with a single task)."""
    row = {"avg_acc": metrics.average_accuracy(acc), "bwt": metrics.backward_transfer(acc),
           "forgetting": metrics.forgetting(acc), "rho": np.nan, "retention": np.nan,
           "percent_forgotten": np.nan}
    if random_acc is None or joint_acc is None:
        return row
    row["rho"] = metrics.forgetting_ratio(acc, random_acc, joint_acc)[-1]
    if acc.shape[0] > 1:
        retention = metrics.retention_ratio(acc, random_acc, joint_acc)[1:]
        if not np.isnan(retention).all():
            row["retention"] = float(np.nanmean(retention))
            row["percent_forgotten"] = metrics.percent_forgotten(acc, random_acc, joint_acc)
    return row


def task_metrics(acc: np.ndarray, random_acc=None, joint_acc=None) -> list[dict]:
    """One dict per task t: avg_acc_t, rho_t and retention_t (NaN without both references)."""
    T = acc.shape[0]
    both = random_acc is not None and joint_acc is not None
    rho = metrics.forgetting_ratio(acc, random_acc, joint_acc) if both else np.full(T, np.nan)
    ret = metrics.retention_ratio(acc, random_acc, joint_acc) if both else np.full(T, np.nan)
    curve = metrics.average_accuracy_curve(acc)
    return [{"task": t, "avg_acc": curve[t], "rho": rho[t], "retention": ret[t]} for t in range(T)]


def results_frame(results, per_task: bool = False):
    """One row per finished run: valid_avg_acc (valid_average: what selects a point of a grid),
    then on test avg_acc, bwt, forgetting, rho (HAT, final), retention (mean over t >= 1, paper
    Fig. 6), percent_forgotten. With per_task: one row per run x task t with
    avg_acc_t, rho_t and retention_t. rho/retention are NaN without random and joint references."""
    import pandas as pd

    runs = [r for r in results if r.finished]
    index = reference_index(runs)
    rows = []
    for r in runs:
        refs = references_of(r, index)
        if per_task:
            rows.extend({**_identity(r), **row} for row in task_metrics(r.acc_matrix(), *refs))
        else:
            rows.append({**_identity(r), "valid_avg_acc": valid_average(r),
                         **run_metrics(r.acc_matrix(), *refs)})
    return pd.DataFrame(rows)


# ---- over seeds ------------------------------------------------------------------------------
def summarize(frame, by=("benchmark", "label", "variant"), metric_names=None):
    """Mean, 95 % CI half-width (metrics.mean_ci) and n over seeds for every metric; by default one
    row per config minus its seed ("variant": two variants may share a label if they differ only
    outside the approach parameters, e.g. in train.lr)."""
    import pandas as pd

    metric_names = [m for m in (metric_names or METRICS) if m in frame.columns]
    by = [b for b in by if b in frame.columns]
    rows = []
    for keys, group in frame.groupby(by, sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        row = dict(zip(by, keys), n=len(group))
        for m in metric_names:
            values = group[m].dropna().to_numpy()
            mean, ci = metrics.mean_ci(values) if values.size else (np.nan, np.nan)
            row[m], row[f"{m}_ci"] = mean, ci
        rows.append(row)
    return pd.DataFrame(rows)


def related_work_table(frame, digits: int = 3):
    """approach -> final average accuracy and HAT rho, each "mean ± CI" over seeds."""
    import pandas as pd

    summary = summarize(frame, metric_names=("avg_acc", "rho"))
    fmt = f"{{:.{digits}f}} ± {{:.{digits}f}}"
    return pd.DataFrame({
        "benchmark": summary["benchmark"], "approach": summary["label"], "seeds": summary["n"],
        "final avg accuracy": [fmt.format(m, c) for m, c in zip(summary["avg_acc"], summary["avg_acc_ci"])],
        "HAT forgetting ratio rho": [fmt.format(m, c) if not np.isnan(m) else "n/a"
                                     for m, c in zip(summary["rho"], summary["rho_ci"])]})


def to_markdown(table) -> str:
    """A GitHub Markdown table (no dependency on tabulate)."""
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)
