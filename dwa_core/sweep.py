"""Sweeps: a list of ExperimentConfig run locally (process pool) or on Ray, results keyed by the
config hash under one sweep directory, and aggregation over seeds (mean and 95 % Student-t CI,
HAT forgetting ratio against the `random` and `joint` runs of the same benchmark and seed)."""

from __future__ import annotations

import copy
import itertools
import json
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tomllib

from dwa_core import metrics
from dwa_core.config import ConfigError, ExperimentConfig

ERROR = "error.json"
REFERENCES = ("random", "joint")
SWEEPS_DIR = Path(__file__).parent / "sweeps"


# ---- building sweeps --------------------------------------------------------------------------
def _set_dotted(values: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    for parent in parents:
        values = values.setdefault(parent, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{key}: {parent} is not a group of settings")
    values[last] = value


def _merge(values: dict, overrides: dict) -> dict:
    """Deep merge; dotted keys ("train.lr") are expanded."""
    out = copy.deepcopy(values)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            _set_dotted(out, key, copy.deepcopy(value))
    return out


def with_fields(cfg: ExperimentConfig, **changes) -> ExperimentConfig:
    """A copy of cfg with dotted fields changed: with_fields(cfg, **{"train.lr": 0.1})."""
    return ExperimentConfig.from_dict(_merge(cfg.to_dict(), changes))


def grid(base: ExperimentConfig, axes: dict | None = None, seeds=None) -> list[ExperimentConfig]:
    """The cartesian product of `axes` ({dotted field: [values]}) times `seeds`."""
    axes = axes or {}
    names = list(axes)
    out = []
    for combo in itertools.product(*(axes[n] for n in names)):
        cfg = with_fields(base, **dict(zip(names, combo)))
        out.extend(with_seeds([cfg], seeds))
    return out


def with_seeds(cfgs, seeds=None) -> list[ExperimentConfig]:
    """Every config once per seed (seeds None: unchanged)."""
    if seeds is None:
        return list(cfgs)
    return [c.replace(seed=int(s)) for c in cfgs for s in seeds]


def sample_space(base: ExperimentConfig, space: dict, n: int, seed: int = 0,
                 seeds=None) -> list[ExperimentConfig]:
    """Random search: n draws from `space` ({field: {"choice": [...]} | {"uniform": [a, b]} |
    {"loguniform": [a, b]} | {"randint": [a, b]}}), each run once per seed."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n):
        changes = {k: _draw(rng, spec, k) for k, spec in space.items()}
        draws.append(with_fields(base, **changes))
    return with_seeds(draws, seeds)


def _draw(rng, spec: dict, key: str):
    (kind, args), = spec.items()
    if kind == "choice":
        return args[int(rng.integers(len(args)))]
    if kind == "uniform":
        return float(rng.uniform(*args))
    if kind == "loguniform":
        return float(np.exp(rng.uniform(np.log(args[0]), np.log(args[1]))))
    if kind == "randint":
        return int(rng.integers(args[0], args[1]))
    raise ConfigError(f"space.{key}: unknown distribution {kind!r} (choice, uniform, loguniform, randint)")


def reference_key(cfg: ExperimentConfig | dict) -> str:
    """What a run shares with its random/joint references: benchmark, its params, seed, tasks."""
    d = cfg.to_dict() if isinstance(cfg, ExperimentConfig) else cfg
    return json.dumps([d["benchmark"], d.get("benchmark_params", {}), d["seed"], d.get("max_tasks"),
                       d.get("network", "auto")], sort_keys=True, default=str)


def with_references(cfgs) -> list[ExperimentConfig]:
    """Add a `random` and a `joint` run for every (benchmark, seed) that lacks them (HAT rho)."""
    cfgs = list(cfgs)
    have = {(reference_key(c), c.approach) for c in cfgs}
    out, seen = list(cfgs), {c.key() for c in cfgs}
    for c in cfgs:
        for approach in REFERENCES:
            if (reference_key(c), approach) in have:
                continue
            ref = c.replace(approach=approach, approach_params={}, name="")
            have.add((reference_key(c), approach))
            if ref.key() not in seen:
                seen.add(ref.key())
                out.append(ref)
    return out


# ---- sweep definitions (TOML / JSON data) --------------------------------------------------------
@dataclass
class SweepDefinition:
    name: str
    configs: list
    output_dir: str
    backend: str = "local"
    workers: int | None = None
    search: dict | None = None  # {"space": ..., "num_samples": n, "algorithm": "random" | "optuna"}
    base: ExperimentConfig | None = None


def load_definition(path) -> SweepDefinition:
    """[sweep] name/seeds/references/output_dir, [base] config, [grid] {dotted: [values]},
    [[variants]] overrides (each may hold its own `grid` table), optional [search] space."""
    path = Path(path)
    if not path.exists() and (SWEEPS_DIR / path).exists():
        path = SWEEPS_DIR / path
    if not path.exists() and (SWEEPS_DIR / f"{path}.toml").exists():
        path = SWEEPS_DIR / f"{path}.toml"
    if not path.exists():
        raise ConfigError(f"sweep definition {path} does not exist")
    raw = json.loads(path.read_text()) if path.suffix == ".json" else tomllib.loads(path.read_text())
    meta = raw.get("sweep", {})
    name = meta.get("name", path.stem)
    seeds = meta.get("seeds")
    base = ExperimentConfig.from_dict(raw.get("base", {}))
    configs = []
    for variant in raw.get("variants", [{}]):
        variant = dict(variant)
        axes = {**raw.get("grid", {}), **variant.pop("grid", {})}
        configs.extend(grid(with_fields(base, **variant), axes, seeds))
    search = raw.get("search")
    if search:
        configs = sample_space(base, search["space"], int(search.get("num_samples", 8)),
                               int(search.get("seed", 0)), seeds)
    if meta.get("references", True):
        configs = with_references(configs)
    return SweepDefinition(name, _unique(configs), meta.get("output_dir", f"results/sweeps/{name}"),
                           meta.get("backend", "local"), meta.get("workers"), search, base)


def _unique(cfgs):
    seen, out = set(), []
    for c in cfgs:
        if c.key() not in seen:
            seen.add(c.key())
            out.append(c)
    return out


# ---- running -------------------------------------------------------------------------------------
def run_dir(cfg: ExperimentConfig, output_dir) -> Path:
    return Path(output_dir) / cfg.run_name()


def run_one(cfg_dict: dict, output_dir: str, threads: int = 1, imports=()) -> dict:
    """Run (or skip, or resume) one config; never raises: a failure is written to error.json."""
    import importlib

    import torch

    from dwa_core.experiment import CHECKPOINT, RESULTS, run_experiment
    from dwa_core.results import Results

    for module in imports:
        importlib.import_module(module)
    if threads:
        torch.set_num_threads(threads)
    cfg = ExperimentConfig.from_dict(cfg_dict).replace(output_dir=str(output_dir))
    where = run_dir(cfg, output_dir)
    info = {"key": cfg.key(), "run": cfg.run_name(), "run_dir": str(where), "error": None}
    try:
        if (where / RESULTS).exists() and Results.load(where / RESULTS).finished:
            return {**info, "status": "cached"}
        status = "resumed" if (where / CHECKPOINT).exists() else "trained"
        start = time.perf_counter()
        run_experiment(cfg, resume=True, save=True)
        (where / ERROR).unlink(missing_ok=True)
        return {**info, "status": status, "seconds": time.perf_counter() - start}
    except Exception as err:  # noqa: BLE001 - one failed run must not stop the sweep
        where.mkdir(parents=True, exist_ok=True)
        error = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc(),
                 "config": cfg.to_dict()}
        (where / ERROR).write_text(json.dumps(error, indent=1, default=str))
        return {**info, "status": "failed", "error": error["error"]}


class Progress:
    """finished / running / failed counts, as tqdm when available, else plain lines."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.done, self.failed, self.enabled = total, 0, 0, enabled
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc="sweep", unit="run", file=sys.stderr)
            except ImportError:  # pragma: no cover
                pass

    def update(self, outcome: dict, running: int) -> None:
        self.done += 1
        self.failed += outcome["status"] == "failed"
        if not self.enabled:
            return
        text = f"finished {self.done}/{self.total} running {running} failed {self.failed}"
        if self.bar is not None:
            self.bar.set_postfix_str(f"running={running} failed={self.failed}")
            self.bar.update(1)
            if outcome["status"] == "failed":
                self.bar.write(f"FAILED {outcome['run']}: {outcome['error']}")
        else:
            print(f"[{text}] {outcome['status']} {outcome['run']}", file=sys.stderr)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def default_workers() -> int:
    """One worker per CUDA device, else one per CPU (at least 1)."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.device_count()
    except ImportError:  # pragma: no cover
        pass
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def run_sweep(cfgs, output_dir, *, backend: str = "local", workers: int | None = None, threads: int = 1,
              address: str | None = None, progress: bool = True, imports=()) -> list[dict]:
    """Run every config, skipping finished ones and resuming interrupted ones; returns one outcome
    dict per config (status "trained" | "resumed" | "cached" | "failed", error, run_dir)."""
    cfgs = _unique(cfgs)
    if backend not in ("local", "ray"):
        raise ConfigError(f"backend: must be 'local' or 'ray', got {backend!r}")
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    workers = workers or default_workers()
    done = {i: {"key": c.key(), "run": c.run_name(), "run_dir": str(run_dir(c, output_dir)), "error": None,
                "status": "cached"} for i, c in enumerate(cfgs) if _finished(run_dir(c, output_dir))}
    todo = [c for i, c in enumerate(cfgs) if i not in done]
    bar = Progress(len(todo), progress)
    try:
        if not todo:
            ran = []
        elif backend == "ray":
            ran = _run_ray(todo, output_dir, workers, threads, address, bar, imports)
        else:
            ran = _run_local(todo, output_dir, workers, threads, bar, imports)
    finally:
        bar.close()
    ran = iter(ran)
    return [done[i] if i in done else next(ran) for i in range(len(cfgs))]


def _finished(where: Path) -> bool:
    """A run whose results.json holds every task (checked without starting a worker)."""
    from dwa_core.results import Results, ResultsError

    try:
        return Results.load(where / "results.json").finished
    except (FileNotFoundError, ResultsError):
        return False


def _run_local(cfgs, output_dir, workers, threads, bar, imports) -> list[dict]:
    outcomes: dict[int, dict] = {}
    if workers <= 1:  # in-process: approaches registered by the caller are visible
        for i, cfg in enumerate(cfgs):
            outcomes[i] = run_one(cfg.to_dict(), str(output_dir), threads, imports)
            bar.update(outcomes[i], 0)
        return [outcomes[i] for i in range(len(cfgs))]
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(cfgs)) or 1, mp_context=context) as pool:
        futures = {pool.submit(run_one, c.to_dict(), str(output_dir), threads, tuple(imports)): i
                   for i, c in enumerate(cfgs)}
        for future in as_completed(futures):
            i = futures[future]
            try:
                outcomes[i] = future.result()
            except Exception as err:  # noqa: BLE001 - e.g. a worker killed by the OS
                outcomes[i] = {"key": cfgs[i].key(), "run": cfgs[i].run_name(), "status": "failed",
                               "error": f"{type(err).__name__}: {err}",
                               "run_dir": str(run_dir(cfgs[i], output_dir))}
            bar.update(outcomes[i], min(workers, len(cfgs) - len(outcomes)))
    return [outcomes[i] for i in range(len(cfgs))]


def _import_ray():
    try:
        import ray
    except ImportError as err:
        raise ConfigError("backend 'ray' needs Ray: pip install 'ray[tune]' "
                          "(and optuna for searches)") from err
    return ray


def _ensure_ray(ray, address, workers):
    if not ray.is_initialized():
        if address:
            ray.init(address=address)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)


def _run_ray(cfgs, output_dir, workers, threads, address, bar, imports) -> list[dict]:
    ray = _import_ray()
    _ensure_ray(ray, address, workers)
    remote = ray.remote(num_cpus=1)(run_one)
    refs = {remote.remote(c.to_dict(), str(Path(output_dir).resolve()), threads, tuple(imports)): i
            for i, c in enumerate(cfgs)}
    outcomes, pending = {}, list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        i = refs[ready[0]]
        outcomes[i] = ray.get(ready[0])
        bar.update(outcomes[i], len(pending))
    return [outcomes[i] for i in range(len(cfgs))]


def tune_search(base: ExperimentConfig, space: dict, output_dir, *, num_samples: int = 8,
                algorithm: str = "random", metric: str = "avg_acc", address: str | None = None,
                workers: int | None = None, threads: int = 1):
    """Ray Tune search over `space` (same format as sample_space); algorithm "optuna" uses
    ray.tune.search.optuna.OptunaSearch. The metric is the final average test accuracy (the
    protocol has no separate selection metric across tasks). Returns the Tune ResultGrid."""
    ray = _import_ray()
    from ray import tune

    _ensure_ray(ray, address, workers or default_workers())
    kinds = {"choice": tune.choice, "uniform": lambda a: tune.uniform(*a),
             "loguniform": lambda a: tune.loguniform(*a), "randint": lambda a: tune.randint(*a)}
    param_space = {}
    for key, spec in space.items():
        (kind, args), = spec.items()
        param_space[key] = kinds[kind](args)
    search_alg = None
    if algorithm == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch()
    out = str(Path(output_dir).resolve())
    base_dict = base.to_dict()

    def trainable(params):
        from dwa_core.results import Results

        cfg = ExperimentConfig.from_dict(_merge(base_dict, params))
        outcome = run_one(cfg.to_dict(), out, threads)
        if outcome["status"] == "failed":
            raise RuntimeError(outcome["error"])
        acc = Results.load(Path(outcome["run_dir"]) / "results.json").acc_matrix()
        tune.report({metric: metrics.average_accuracy(acc)})

    tuner = tune.Tuner(tune.with_resources(trainable, {"cpu": 1}), param_space=param_space,
                       tune_config=tune.TuneConfig(metric=metric, mode="max", num_samples=num_samples,
                                                   search_alg=search_alg),
                       run_config=tune.RunConfig(storage_path=str(Path(out) / "tune")))
    return tuner.fit()


# ---- aggregation ---------------------------------------------------------------------------------
def load_results(output_dir, cfgs=None) -> list:
    """Results of every run directory under output_dir (or only of `cfgs`); unfinished runs too."""
    from dwa_core.results import Results

    if cfgs is not None:
        paths = [run_dir(c, output_dir) / "results.json" for c in cfgs]
    else:
        paths = sorted(Path(output_dir).glob("*/results.json"))
    return [Results.load(p) for p in paths if p.exists()]


def label(config: dict) -> str:
    """approach[name](param=value, ...): what tells runs of one sweep apart, seed excluded."""
    text = config["approach"] + (f"[{config['name']}]" if config.get("name") else "")
    params = config.get("approach_params") or {}
    if params:
        text += "(" + ", ".join(f"{k}={v}" for k, v in sorted(params.items())) + ")"
    return text


def results_frame(results, per_task: bool = False):
    """One row per finished run: avg_acc, bwt, forgetting, rho (HAT, final), retention (mean over
    t >= 1, paper Fig. 6), percent_forgotten. With per_task: one row per run x task t with
    avg_acc_t, rho_t and retention_t. rho/retention are NaN without random and joint references."""
    import pandas as pd

    runs = [r for r in results if r.finished]
    refs = {(reference_key(r.config), r.config["approach"]): r.acc_matrix() for r in runs
            if r.config["approach"] in REFERENCES}
    rows = []
    for r in runs:
        acc, c = r.acc_matrix(), r.config
        rand, joint = refs.get((reference_key(c), "random")), refs.get((reference_key(c), "joint"))
        T = acc.shape[0]
        rho = (metrics.forgetting_ratio(acc, rand, joint) if rand is not None and joint is not None
               else np.full(T, np.nan))
        ret = (metrics.retention_ratio(acc, rand, joint) if rand is not None and joint is not None
               else np.full(T, np.nan))
        cfg = ExperimentConfig.from_dict(c)
        ident = {"benchmark": c["benchmark"], "approach": c["approach"], "label": label(c),
                 "variant": cfg.replace(seed=0).key(),  # the config without its seed
                 "name": c.get("name", ""), "seed": c["seed"],
                 "run": cfg.run_name()}
        if per_task:
            curve = metrics.average_accuracy_curve(acc)
            rows.extend({**ident, "task": t, "avg_acc": curve[t], "rho": rho[t], "retention": ret[t]}
                        for t in range(T))
            continue
        rows.append({**ident, "avg_acc": metrics.average_accuracy(acc), "bwt": metrics.backward_transfer(acc),
                     "forgetting": metrics.forgetting(acc), "rho": rho[-1],
                     "retention": float(np.nanmean(ret[1:])) if T > 1 and not np.isnan(ret[1:]).all()
                     else np.nan,
                     "percent_forgotten": 100 * (1 - np.nanmean(ret[1:])) if T > 1
                     and not np.isnan(ret[1:]).all() else np.nan})
    return pd.DataFrame(rows)


METRICS = ("avg_acc", "bwt", "forgetting", "rho", "retention", "percent_forgotten")


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


# ---- CLI -----------------------------------------------------------------------------------------
def add_sweep_command(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="run a sweep definition (TOML/JSON) and aggregate it")
    p.add_argument("definition", help="a .toml/.json file, or the name of one in dwa_core/sweeps")
    p.add_argument("--backend", choices=("local", "ray"), default=None)
    p.add_argument("--workers", type=int, default=None, help="parallel runs (default: devices / CPUs)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start Ray locally)")
    p.add_argument("--output-dir", default=None)
    p.add_argument("--table", action="store_true", help="print the related-work table as Markdown")
    p.add_argument("--aggregate-only", action="store_true", help="do not run, only aggregate")
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    p.set_defaults(func=sweep_main)


def sweep_main(args) -> int:
    d = load_definition(args.definition)
    out = Path(args.output_dir or d.output_dir)
    if args.dry_run:
        for c in d.configs:
            print(c.run_name())
        print(f"{len(d.configs)} runs -> {out}")
        return 0
    failed = 0
    backend = args.backend or d.backend
    if d.search and backend == "ray" and not args.aggregate_only:  # Ray Tune (Optuna when asked)
        result = tune_search(d.base, d.search["space"], out, num_samples=int(d.search.get("num_samples", 8)),
                             algorithm=d.search.get("algorithm", "random"), address=args.address,
                             workers=args.workers or d.workers, threads=args.threads)
        best = result.get_best_result()
        print(f"best: {best.config} avg_acc={best.metrics.get('avg_acc')}")
        d.configs = [ExperimentConfig.from_dict(_merge(d.base.to_dict(), r.config)) for r in result]
        args.aggregate_only = True
    if not args.aggregate_only:
        outcomes = run_sweep(d.configs, out, backend=backend,
                             workers=args.workers or d.workers, threads=args.threads, address=args.address)
        failed = sum(o["status"] == "failed" for o in outcomes)
        counts = {s: sum(o["status"] == s for o in outcomes)
                  for s in ("trained", "resumed", "cached", "failed")}
        print("runs: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for o in outcomes:
            if o["status"] == "failed":
                print(f"failed: {o['run']}: {o['error']} (see {o['run_dir']}/{ERROR})")
    frame = results_frame(load_results(out, None if d.search else d.configs))
    if frame.empty:
        print("no finished runs")
        return 1 if failed else 0
    frame.to_csv(out / "runs.csv", index=False)
    summarize(frame).to_csv(out / "summary.csv", index=False)
    if args.table:
        text = to_markdown(related_work_table(frame))
        (out / "table.md").write_text(text + "\n")
        print(text)
    else:
        print(summarize(frame, metric_names=("avg_acc", "rho")).to_string(index=False))
    return 1 if failed else 0
