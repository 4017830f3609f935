"""A fair comparison of approaches: one training protocol for all of them, each approach's
hyper-parameters chosen on validation data (as the HAT paper did, Serrà et al. 2018, §4), the
chosen point run on several seeds and reported on the test sets with 95 % Student-t intervals.

A comparison is a sweep definition (dwa_core/sweeps/compare-*.toml) with a [select] table:

    [base]         the protocol: benchmark and its parameters, TrainConfig, network width
    [[variants]]   one table row each (an approach, or a variant of one with its own `label`), with its
                   candidates (`grid`, `points`); a row may change network_params and
                   approach_params, never `train`: that is the protocol, except the fields named
                   in [select] tuned_train, which a row's grid may vary (e.g. DWA's lr and warm-up)
    [sweep] seeds  the seeds the candidates are trained on for the selection
    [select]       final_seeds: the seeds of the reported runs, disjoint from the selection seeds
                   (so no reported run took part in the choice) unless `allow_overlap = true`;
                   tuned_train: TrainConfig fields tuned like hyper-parameters (the table says so)

`run_comparison` trains what is missing, selects, and returns the data that `write_data` stores
(tables/compare-*.json) and `markdown` turns into the README's tables."""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dwa_core import approaches, metrics, numerics
from dwa_core.aggregate import REFERENCES, reference_index, references_of, run_metrics, validation_score
from dwa_core.config import ConfigError, ExperimentConfig, TrainConfig
from dwa_core.fields import specs
from dwa_core.files import load_config_file
from dwa_core.results import atomic_write
from dwa_core.sweep.define import (check_configs, check_definition, find_definition, variant_configs,
                                   with_references)
from dwa_core.sweep.execute import run_sweep

SELECT_KEYS = ("final_seeds", "allow_overlap", "tuned_train")
SCORE = ("final average validation accuracy (valid_acc[T-1] averaged over the tasks, mean over selection "
         "seeds)")
REPORTED = ("avg_acc", "bwt", "forgetting", "rho", "agnostic_acc", "task_inference")
TABLES_DIR = Path(__file__).resolve().parent.parent / "tables"
log = logging.getLogger(__name__)


@dataclass
class Row:
    """One row of the table: its label and its candidates on the selection seeds."""
    label: str
    approach: str
    candidates: list = field(default_factory=list)  # ExperimentConfig, one per candidate and seed


@dataclass
class Comparison:
    name: str
    path: Path
    base: ExperimentConfig
    rows: list
    seeds: list
    final_seeds: list
    allow_overlap: bool = False  # selection seeds may be reported seeds too (the old protocol)
    tuned_train: tuple = ()  # TrainConfig fields a row's grid may vary (selected on validation)


def load_comparison(name_or_path) -> Comparison:
    """Read a comparison definition. Raises ConfigError (naming the file) for a missing [select],
    a row that changes `train` (the protocol), two rows with one label, fewer than 2 final seeds, or
    selection seeds ([sweep] seeds) that are also final seeds without `[select] allow_overlap = true`."""
    path = find_definition(name_or_path)
    raw = load_config_file(path)
    check_definition(raw, path)
    meta = raw.get("sweep", {})
    seeds, final_seeds, allow_overlap = _select_seeds(raw.get("select"), meta, path)
    base = ExperimentConfig.from_dict(raw.get("base", {}))
    tuned = _tuned_train(raw["select"], path)
    rows = _rows(raw.get("variants", []), base, seeds, path, tuned)
    return Comparison(meta.get("name", path.stem), path, base, rows, seeds, final_seeds, allow_overlap, tuned)


def _tuned_train(select: dict, path) -> tuple[str, ...]:
    """[select] tuned_train: the TrainConfig fields (e.g. lr, warmup_epochs) that a row's `grid` or
    `points` may vary as hyper-parameters, chosen on validation like the approach's own; every other
    field is the protocol. ConfigError for a field TrainConfig does not have."""
    names = select.get("tuned_train", [])
    valid = {f.name for f in dataclasses.fields(TrainConfig)}
    if not isinstance(names, list) or any(n not in valid for n in names):
        raise ConfigError(f"{path} [select] tuned_train: must be a list of TrainConfig fields "
                          f"({', '.join(sorted(valid))}), got {names!r}")
    return tuple(names)


def _select_seeds(select, meta: dict, path) -> tuple[list, list, bool]:
    """(selection seeds, final seeds, allow_overlap) of a definition's [select] table and its [sweep]
    table (`meta`), checked as `load_comparison` says."""
    if not isinstance(select, dict) or "final_seeds" not in select:
        raise ConfigError(f"{path}: a comparison needs a [select] table with final_seeds")
    unknown = sorted(set(select) - set(SELECT_KEYS))
    if unknown:
        raise ConfigError(f"{path} [select]: unknown key(s) {', '.join(unknown)}; "
                          f"valid: {', '.join(SELECT_KEYS)}")
    final_seeds = [int(s) for s in select["final_seeds"]]
    if len(final_seeds) < 2:
        raise ConfigError(f"{path} [select] final_seeds: at least 2 seeds for an interval, got {final_seeds}")
    seeds = [int(s) for s in meta.get("seeds", [0])]
    allow_overlap = select.get("allow_overlap", False)
    if not isinstance(allow_overlap, bool):
        raise ConfigError(f"{path} [select] allow_overlap: must be true or false, got {allow_overlap!r}")
    shared = sorted(set(seeds) & set(final_seeds))
    if shared and not allow_overlap:
        raise ConfigError(f"{path}: selection seeds ([sweep] seeds {seeds}) and reported seeds ([select] "
                          f"final_seeds {final_seeds}) share {shared}; use disjoint seeds (e.g. "
                          f"seeds = [100]) or set [select] allow_overlap = true")
    return seeds, final_seeds, allow_overlap


def _rows(variants: list, base: ExperimentConfig, seeds: list, path, tuned: tuple = ()) -> list[Row]:
    """One Row per [[variants]] entry (its candidates on the selection seeds, each checked before
    anything trains); ConfigError for a row that changes `train` (beyond the `tuned` fields in its
    grid or points) or a label used twice."""
    rows: dict[str, Row] = {}
    for variant in variants:
        fixed = [k for k in _keys(variant) if str(k).startswith("train.") and str(k)[6:] not in tuned]
        if "train" in variant or fixed:
            raise ConfigError(f"{path}: row {variant.get('approach')!r} changes `train`; one protocol for "
                              f"every row: set it in [base] (a grid may vary only [select] tuned_train "
                              f"fields: {', '.join(tuned) or 'none'})")
        variant = dict(variant)
        label = variant.pop("label", None) or variant.get("name") or variant.get("approach", base.approach)
        if label in rows:
            raise ConfigError(f"{path}: two rows are labelled {label!r}; give one a `name`")
        cfgs = variant_configs(base, variant, None, seeds)
        check_configs(cfgs, path)  # every candidate, before anything trains
        rows[label] = Row(label, cfgs[0].approach, cfgs)
    return list(rows.values())


def _keys(variant: dict):
    yield from variant
    for point in variant.get("points", []):
        yield from point
    yield from variant.get("grid", {})


def _changes(cfg: ExperimentConfig, base: ExperimentConfig) -> dict:
    """What a candidate sets on top of the protocol: its approach and network parameters, and the
    training fields it tunes ("train.lr", ...)."""
    out = dict(cfg.approach_params)
    out.update({f"network.{k}": v for k, v in cfg.network_params.items()
                if base.network_params.get(k) != v})
    train, protocol = cfg.to_dict()["train"], base.to_dict()["train"]
    out.update({f"train.{k}": v for k, v in train.items() if protocol.get(k) != v})
    return out


def chosen_point(comp: Comparison, row: dict) -> ExperimentConfig:
    """The candidate (seed 0) of the row labelled row["label"] whose changes from [base] are
    row["chosen"], `row` being a row of the comparison's data file (`run_comparison`). A point is a
    candidate once per selection seed; it is returned once. Raises ValueError when no candidate, or
    more than one distinct candidate, matches."""
    points = {c.replace(seed=0).key(): c.replace(seed=0) for r in comp.rows if r.label == row["label"]
              for c in r.candidates}
    matches = [c for c in points.values() if _changes(c, comp.base) == row["chosen"]]
    if len(matches) != 1:
        raise ValueError(f"{comp.name}: {len(matches)} candidates match {row['label']}'s chosen point "
                         f"{row['chosen']}")
    return matches[0]


def _load(cfgs, output_dir) -> dict:
    """{key: Results} of the runs of `cfgs` that can be read and were computed by this code's
    numerics (a run of other numerics is left out with a warning naming its file)."""
    from dwa_core.experiment import load_run
    from dwa_core.runs import RESULTS, run_dir

    out = {}
    for c in cfgs:
        try:
            result = load_run(run_dir(c, output_dir))
        except (OSError, ValueError, KeyError):
            continue
        changed = numerics.mismatch(result.numerics)
        if changed:
            log.warning("skipping %s: computed by other numerics (%s); rerun it",
                        run_dir(c, output_dir) / RESULTS, changed)
            continue
        out[c.key()] = result
    return out


def select(row: Row, runs: dict) -> tuple[ExperimentConfig, list[dict]]:
    """(the chosen candidate, seed removed; every candidate's score) by the highest mean validation
    score over the selection seeds; ties go to the first listed. Raises ValueError naming a
    candidate that has not finished."""
    scores: dict[str, list] = {}
    firsts: dict[str, ExperimentConfig] = {}
    for c in row.candidates:
        key = c.replace(seed=0).key()
        firsts.setdefault(key, c.replace(seed=0))
        result = runs.get(c.key())
        if result is None or not result.finished:
            raise ValueError(f"{row.label}: candidate {c.approach_params} (seed {c.seed}) has not finished")
        scores.setdefault(key, []).append(validation_score(result))
    changes = {k: _changes(firsts[k], row.candidates[0]) for k in scores}
    shared = {name for name, value in next(iter(changes.values())).items()
              if all(c.get(name, object()) == value for c in changes.values())} if len(changes) > 1 else set()
    table = [{"params": {n: v for n, v in changes[k].items() if n not in shared},  # what tells them apart
              "valid_score": float(np.mean(v))} for k, v in scores.items()]
    best = max(range(len(table)), key=lambda i: (table[i]["valid_score"], -i))
    for i, entry in enumerate(table):
        entry["chosen"] = i == best
    return list(firsts.values())[best], table


def agnostic_metrics(results) -> dict:
    """{"agnostic_acc", "task_inference"}: the final row of a run's task-agnostic matrices averaged
    over the tasks (accuracy with the head chosen as the most confident one, and the fraction of
    samples given to their own task's head; `Approach.task_agnostic`). NaN for a run that did not
    record them (older files, `random`, `sgd-restart`)."""
    agnostic, inference = results.agnostic_acc_matrix(), results.task_inference_matrix()
    if agnostic is None or np.isnan(agnostic[-1]).all():
        return {"agnostic_acc": float("nan"), "task_inference": float("nan")}
    return {"agnostic_acc": float(np.nanmean(agnostic[-1])),
            "task_inference": float(np.nanmean(inference[-1]))}


def _per_seed(results, index) -> dict:
    return {**run_metrics(results.acc_matrix(), *references_of(results, index)), **agnostic_metrics(results)}


def _stat(values) -> dict:
    """{"mean", "ci95" (95 % Student-t half-width, metrics.mean_ci), "per_seed"} of the finite values."""
    values = np.array(values, dtype=float)
    values = values[~np.isnan(values)]
    mean, half = metrics.mean_ci(values) if values.size else (float("nan"), float("nan"))
    return {"mean": float(mean), "ci95": float(half), "per_seed": [float(v) for v in values]}


def _cpu_seconds(results) -> float:
    return float(sum(sum(r.task_seconds) for r in results))


def _trained(configs, output_dir, train: bool, workers: int, threads: int, stage_seconds: dict,
             stage: str) -> dict:
    """{key: Results} of the readable runs of `configs` in output_dir, after training the missing
    ones when `train` (its wall seconds then go to stage_seconds[stage])."""
    if train:
        start = time.perf_counter()
        run_sweep(configs, output_dir, workers=workers, threads=threads)
        stage_seconds[stage] = time.perf_counter() - start
    return _load(configs, output_dir)


def _final_row(comp: Comparison, row: Row, chosen: tuple, runs: dict, final_runs: dict, index) -> dict:
    """One row of the comparison's data: its candidates' scores, the chosen point (`chosen`: select's
    (config, table)), its test metrics over the final seeds and the CPU seconds of both stages."""
    cfg, table = chosen
    results = [final_runs[cfg.replace(seed=s).key()] for s in comp.final_seeds]
    per_seed = [_per_seed(r, index) for r in results]
    summary = {m: _stat([p[m] for p in per_seed]) for m in REPORTED}
    candidates_cpu = _cpu_seconds(runs[c.key()] for c in row.candidates)
    return {"label": row.label, "approach": row.approach, "candidates": table,
            "chosen": _changes(cfg, comp.base), "seeds": comp.final_seeds, "test": summary,
            "cpu_seconds": {"selection": candidates_cpu, "final": _cpu_seconds(results)}}


def run_comparison(name_or_path, output_dir, *, workers: int = 1, threads: int = 1, train: bool = True,
                   command: str = "") -> dict:
    """Train the candidates (selection seeds) and the chosen points (final seeds, with the random
    and joint references of HAT's forgetting ratio), select, and return the comparison's data:
    protocol, selection rule, per row its candidates' scores, chosen point and test metrics (mean
    and 95 % t-interval half-width over final seeds), and the CPU seconds of every stage. With
    train=False nothing is trained (a missing run is then an error naming it)."""
    comp = load_comparison(name_or_path)
    stage_seconds: dict = {}
    grid = with_references([c for row in comp.rows for c in row.candidates], comp.base)
    runs = _trained(grid, output_dir, train, workers, threads, stage_seconds, "selection_wall")
    chosen = {row.label: select(row, runs) for row in comp.rows}
    finals = with_references([cfg.replace(seed=s) for cfg, _ in chosen.values() for s in comp.final_seeds],
                             comp.base)
    final_runs = _trained(finals, output_dir, train, workers, threads, stage_seconds, "final_wall")
    missing = [c.run_name() for c in finals if c.key() not in final_runs or not final_runs[c.key()].finished]
    if missing:
        raise ValueError(f"{len(missing)} final run(s) not finished in {output_dir}: "
                         f"{', '.join(missing[:3])}")
    index = reference_index(list(final_runs.values()))
    rows = [_final_row(comp, row, chosen[row.label], runs, final_runs, index) for row in comp.rows]
    references = [r for r in final_runs.values() if r.config["approach"] in REFERENCES]
    reference_rows = {}
    for name in REFERENCES:
        runs_of = [r for r in references
                   if r.config["approach"] == name and r.config["seed"] in comp.final_seeds]
        per_seed = [_per_seed(r, index) for r in runs_of]
        reference_rows[name] = {m: _stat([p[m] for p in per_seed]) for m in REPORTED}
    return {
        "name": comp.name, "definition": f"dwa_core/sweeps/{comp.path.name}", "command": command,
        "protocol": {"benchmark": comp.base.benchmark, "benchmark_params": comp.base.benchmark_params,
                     "train": comp.base.to_dict()["train"], "network_params": comp.base.network_params,
                     "weight_init": comp.base.weight_init},
        "numerics": numerics.identity(),
        "selection": {"rule": SCORE, "seeds": comp.seeds, "allow_overlap": comp.allow_overlap,
                      "tuned_train": list(comp.tuned_train)},
        "rows": rows, "references": reference_rows,
        "cpu_seconds": {"total": _cpu_seconds(runs.values()) + _cpu_seconds(
            r for k, r in final_runs.items() if k not in runs),
            "references_final": _cpu_seconds(references), **stage_seconds},
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "threads_per_run": threads, "workers": workers},
    }


def write_data(data: dict, path) -> Path:
    """The comparison's data as indented JSON (atomic write)."""
    return atomic_write(path, (json.dumps(data, indent=1, sort_keys=False) + "\n").encode())


def read_data(path) -> dict:
    """A data file written by write_data, its shape checked (check_data); errors name the path."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot read comparison data ({err})") from err
    check_data(data, path)
    return data


_STAT = {"mean": float, "ci95": float}
# The metrics every data file has (agnostic_acc and task_inference came later: markdown shows n/a).
_TEST = {m: _STAT for m in ("avg_acc", "bwt", "forgetting", "rho")}
# What markdown() and update_readme() read from a data file: {key: shape}; a list holds rows of one
# shape; float: a number (NaN allowed); None: any value.
DATA_SHAPE = {
    "name": str, "definition": str,
    "protocol": {"benchmark": str, "benchmark_params": dict, "network_params": dict, "weight_init": str,
                 "train": {k: None for k in ("epochs", "batch_size", "lr", "lr_factor", "lr_patience",
                                             "clip_grad")}},
    "selection": {"rule": str, "seeds": list},
    "rows": [{"label": str, "candidates": [{"params": dict, "valid_score": float}], "chosen": dict,
              "seeds": list, "test": _TEST}],
    "cpu_seconds": {"total": float},
}


def check_data(data, path) -> None:
    """Raise ConfigError naming the file and the first key (dotted, rows indexed) that is missing or
    of the wrong kind in comparison data (DATA_SHAPE; `references`, when present, as a row's test)."""
    problem = _shape_problem(data, DATA_SHAPE, "")
    references = data.get("references", {}) if isinstance(data, dict) else {}
    if problem is None:
        problem = _shape_problem(references, {k: _TEST for k in references}, "references") \
            if isinstance(references, dict) else "references: must be a table"
    if problem:
        raise ConfigError(f"{path}: not complete comparison data (compare.write_data): {problem}")


def _shape_problem(value, shape, where: str) -> str | None:
    if shape is None:
        return None
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return f"{where or 'the file'}: must be a table, got {type(value).__name__}"
        for key, inner in shape.items():
            if key not in value:
                return f"{where + '.' if where else ''}{key}: missing"
            problem = _shape_problem(value[key], inner, f"{where + '.' if where else ''}{key}")
            if problem:
                return problem
        return None
    if isinstance(shape, list):
        if not isinstance(value, list) or not value:
            return f"{where}: must be a non-empty list"
        problems = (_shape_problem(v, shape[0], f"{where}[{i}]") for i, v in enumerate(value))
        return next((p for p in problems if p), None)
    kinds = (int, float) if shape is float else shape
    if not isinstance(value, kinds) or isinstance(value, bool):
        return f"{where}: must be {'a number' if shape is float else 'a ' + shape.__name__}, got {value!r}"
    return None


def stale_warning(data: dict, path) -> str | None:
    """One line when the data file at `path` was computed by other (or unknown) numerics than this
    code's (dwa_core.numerics), naming the file, both versions and the command that regenerates it;
    None when it is current."""
    changed = numerics.mismatch(data.get("numerics"))
    if changed is None:
        return None
    command = data.get("command") or f"python -m dwa_core compare {data.get('name', Path(path).stem)}"
    return (f"warning: {path} is older than the code ({changed}): its numbers may not be what the code "
            f"computes now; regenerate it with: {command}")


def _fmt(stat: dict, digits: int = 3) -> str:
    if stat is None or np.isnan(stat["mean"]):
        return "n/a"
    return f"{stat['mean']:.{digits}f} ± {stat['ci95']:.{digits}f}"


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "—"


def _tuned_text(data: dict) -> str:
    """The training fields some rows tune, and which rows ("" when none does)."""
    tuned = data["selection"].get("tuned_train", [])
    if not tuned:
        return ""
    rows = [r["label"] for r in data["rows"]
            if any(k.startswith("train.") for c in r["candidates"] for k in c["params"])]
    return (f"; {', '.join(tuned)} are tuned like hyper-parameters in the grid of {', '.join(rows) or 'no row'} "
            f"(every other row, and the random and joint references, train at the protocol's values)")


def _overlap_text(selection: dict) -> str:
    """How the selection seeds relate to the reported ones ("" for a file written before
    `allow_overlap` existed, whose seeds the sentence still shows)."""
    if "allow_overlap" not in selection:
        return ""
    if selection["allow_overlap"]:
        return " (which may also be reported seeds: [select] allow_overlap = true)"
    return " (disjoint from the reported seeds)"


# The families do not share a dropout rule (each keeps its paper's / the original code's); the tables
# say so rather than hide it. The networks of dwa_core.models: plain (sgd, ewc, lwf, lfl, imm-*,
# joint, random), progressive and PathNet columns, HAT's, DWA's (use_dropout=False by default).
DROPOUT_BY_FAMILY = ("Dropout differs by network family, as each family's original network has it: "
                     "in the MLPs, 0.5 after each hidden layer in the plain one, the progressive and the "
                     "PathNet columns, 0.2 on the input and 0.5 after each hidden layer in HAT's; in the "
                     "AlexNets, 0.2 after conv1-2 and 0.5 after conv3, fc1 and fc2 in the plain one and "
                     "HAT's; none in DWA's MLP or AlexNet.")


def markdown(data: dict) -> str:
    """The README block of one comparison: protocol, rule, then one table row per approach (grid,
    chosen point, test metrics over the final seeds) and the CPU time."""
    p, train = data["protocol"], data["protocol"]["train"]
    lines = [
        f"Protocol (every row): `{p['benchmark']}` {json.dumps(p['benchmark_params'])}, network "
        f"{json.dumps(p['network_params'])}, {train['epochs']} epochs, batch {train['batch_size']}, "
        f"lr {train['lr']} (divided by {train['lr_factor']} after {train['lr_patience']} epochs without "
        f"validation improvement), gradient-norm clip {train['clip_grad']}, init `{p['weight_init']}`. "
        f"Selection: each row's candidate with the highest {data['selection']['rule']}, on seeds "
        f"{data['selection']['seeds']}{_overlap_text(data['selection'])}{_tuned_text(data)}; the chosen "
        f"point is then run on "
        f"seeds {data['rows'][0]['seeds']} and reported on the test sets "
        f"(mean ± 95 % Student-t half-width). "
        f"Task-agnostic accuracy: no task id at test time, each test sample goes to the head of the seen "
        f"tasks with the most confident softmax (task inference: the fraction given to its own task's head; "
        f"chance 1/T). {DROPOUT_BY_FAMILY} Definition `{data['definition']}`, "
        f"data `tables/{data['name']}.json`.",
        "",
        "| approach | candidates (validation score) | chosen | final avg accuracy | BWT | forgetting | rho "
        "| task-agnostic accuracy | task inference |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in data["rows"]:
        grid = "; ".join(f"{_params_text(c['params']) if c['params'] else 'as the row'}: "
                         f"{c['valid_score']:.3f}" for c in row["candidates"])
        if len(row["candidates"]) == 1:
            grid = f"one: {row['candidates'][0]['valid_score']:.3f}"
        t = row["test"]
        lines.append(f"| {row['label']} | {grid} | {_params_text(row['chosen'])} | {_fmt(t['avg_acc'])} | "
                     f"{_fmt(t['bwt'])} | {_fmt(t['forgetting'])} | {_fmt(t['rho'])} | "
                     f"{_fmt(t.get('agnostic_acc'))} | {_fmt(t.get('task_inference'))} |")
    for name, t in data.get("references", {}).items():
        lines.append(f"| {name} (reference) | — | — | {_fmt(t['avg_acc'])} | {_fmt(t['bwt'])} | "
                     f"{_fmt(t['forgetting'])} | {_fmt(t['rho'])} | {_fmt(t.get('agnostic_acc'))} | "
                     f"{_fmt(t.get('task_inference'))} |")
    lines += ["", retention_order(data), "", edge_sentence(data)]
    cpu = data["cpu_seconds"]
    lines += ["", f"CPU time (sum over runs of their per-task seconds, one thread per run): "
                  f"{cpu['total'] / 60:.0f} min in all."]
    return "\n".join(lines)


# Parameters that are a training budget rather than a trade-off: more is more training (PathNet's
# generations of path search per task, like epochs), so a short protocol's validation prefers the
# largest value tried however wide the grid. grid_edges does not count them; edge_sentence names them.
BUDGETS = {("pathnet", "generations")}


def _chosen_params(row: dict) -> dict:
    """The parameters of a row's chosen candidate ({} if none is marked)."""
    return next((c["params"] for c in row["candidates"] if c.get("chosen")), {})


def grid_edges(row: dict, protocol: dict | None = None) -> list[str]:
    """The parameters at which a comparison row's chosen candidate sits on an edge of its grid:
    for every numeric parameter that takes 3 or more values among the row's candidates, "name=value"
    when the chosen candidate has its smallest or largest value (the grid does not bracket the
    choice), unless that value is the parameter's own declared bound (a grid cannot go below λ = 0,
    the penalty off). A row of one candidate, or whose grid varies nothing numeric, has none. `protocol`
    (the data file's) gives the values of the training fields that a candidate leaves out."""
    chosen = _chosen_params(row)
    defaults = _param_defaults(row.get("approach"))  # a candidate that leaves a parameter out has its default
    defaults.update({f"train.{k}": v for k, v in (protocol or {}).get("train", {}).items()})
    edges = []
    bounds = _param_bounds(row.get("approach"))
    for name, value in chosen.items():
        values = {c["params"].get(name, defaults.get(name)) for c in row["candidates"]}
        numbers = sorted(v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool))
        if len(numbers) < 3 or len(numbers) != len(values) or value not in (numbers[0], numbers[-1]):
            continue
        if (row.get("approach"), name) in BUDGETS:
            continue  # a budget: its largest value is no edge a grid could bracket
        bound = bounds.get(name)
        if bound is not None and value in (bound.low, bound.high):
            continue  # the grid reaches the parameter's own limit (e.g. λ = 0: the penalty off)
        edges.append(f"{name}={value:g}")
    return edges


def _param_bounds(approach: str | None) -> dict:
    """{field: Bounds} of an approach's Params where declared ({} for an unknown name)."""
    if approach not in approaches.names():
        return {}
    return {name: spec.bounds for name, spec in specs(approaches.get(approach).Params).items()
            if spec is not None and spec.bounds is not None}


def _param_defaults(approach: str | None) -> dict:
    """{field: default} of an approach's Params ({} for an unknown name)."""
    if approach not in approaches.names():
        return {}
    return {f.name: f.default for f in dataclasses.fields(approaches.get(approach).Params)
            if f.default is not dataclasses.MISSING}


def edge_sentence(data: dict) -> str:
    """One sentence naming the rows whose chosen point sits on an edge of its grid (grid_edges), or
    saying that every grid brackets its choice."""
    found = [f"{row['label']} ({', '.join(edges)})" for row in data["rows"]
             if (edges := grid_edges(row, data.get("protocol")))]
    budgets = [f"{row['label']}'s {name} = {chosen[name]:g}" for row in data["rows"]
               for approach, name in BUDGETS if row.get("approach") == approach
               and name in (chosen := _chosen_params(row))]
    budget_text = (f" Training budgets (more is more training, not a trade-off, so a choice at the largest "
                   f"value tried is not counted as an edge): {'; '.join(budgets)}." if budgets else "")
    if not found:
        return "Every grid of three or more values brackets its chosen point." + budget_text
    return ("Chosen at an edge of its grid (the grid does not bracket the choice, so a wider one may choose "
            "otherwise): " + "; ".join(found) + "." + budget_text)


def _interval(stat: dict) -> tuple[float, float]:
    return stat["mean"] - stat["ci95"], stat["mean"] + stat["ci95"]


def retention_order(data: dict, order=("joint", "hat", "ewc", "sgd"), metric: str = "avg_acc") -> str:
    """One sentence: whether final average accuracy follows `order` (each ≥ the next), pair by pair:
    "clearly" when the 95 % intervals do not overlap, "within the intervals" when the means are in
    order but the intervals overlap, "reversed" otherwise; and where DWA falls."""
    stats = {**{r["label"]: r["test"][metric] for r in data["rows"]},
             **{k: v[metric] for k, v in data.get("references", {}).items()}}
    present = [name for name in order if name in stats]
    parts = []
    for a, b in zip(present, present[1:]):
        lo_a, _ = _interval(stats[a])
        _, hi_b = _interval(stats[b])
        if stats[a]["mean"] < stats[b]["mean"]:
            verdict = "reversed"
        elif lo_a > hi_b:
            verdict = "clearly"
        else:
            verdict = "within the intervals"
        parts.append(f"{a} ≥ {b}: {verdict}")
    text = f"Order {' ≥ '.join(present)} ({metric}): " + "; ".join(parts) + "."
    if "dwa" in stats:
        ranked = sorted(stats, key=lambda k: -stats[k]["mean"])
        text += (f" DWA ranks {ranked.index('dwa') + 1} of {len(ranked)} "
                 f"({_fmt(stats['dwa'])}).")
    return text


MARK = "<!-- comparison:{name} {edge} -->"


def check_readme(readme, name: str) -> None:
    """Raise ConfigError unless `readme` is a writable file holding the block of comparison `name`
    (what update_readme will fill): checked before anything trains."""
    from dwa_core.files import check_output_file

    check_output_file(readme, "--readme")
    try:
        text = Path(readme).read_text()
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or err
        raise ConfigError(f"--readme: {readme} cannot be read ({reason})") from err
    start, end = (MARK.format(name=name, edge=e) for e in ("start", "end"))
    if start not in text or end not in text:
        raise ConfigError(f"--readme: {readme}: no {start} ... {end} block to fill")


def update_readme(data: dict, readme) -> bool:
    """Replace the block between the comparison's markers in `readme` by markdown(data); returns
    whether the file changed. Raises ConfigError when the markers are missing."""
    path = Path(readme)
    text = path.read_text()
    start, end = (MARK.format(name=data["name"], edge=e) for e in ("start", "end"))
    if start not in text or end not in text:
        raise ConfigError(f"{path}: no {start} ... {end} block to fill")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{markdown(data)}\n{end}{tail}"
    if new != text:
        atomic_write(path, new.encode())
    return new != text
