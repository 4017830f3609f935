"""Running sweeps: every config of a list run once (skipped when finished, resumed when
interrupted), in-process, on a local process pool or on Ray, one failure never stopping the rest;
and Ray Tune searches. Results land in output_dir/<run name>/ (runs.run_dir)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from dwa_core import metrics, numerics
from dwa_core.allocator import check_mode, keep_freed_memory
from dwa_core.config import ConfigError, ExperimentConfig
from dwa_core.files import check_output_dir, merge
from dwa_core.runs import RESULTS, is_finished, outcome, run_dir
from dwa_core.sweep.define import unique

ERROR = "error.json"
BACKENDS = ("local", "ray")


def run_one(cfg_dict: dict, output_dir: str, threads: int = 1, imports=(),
            numerics_version: int | None = None) -> dict:
    """Run (or skip, or resume) one config; never raises: a failure is written to error.json.
    Returns runs.outcome(...) with "seconds" when it trained. `numerics_version`: the sweep's
    (the driver's numerics.VERSION); a worker of other numerics (a Ray worker started without the
    driver's DWA_CORE_NUMERICS) fails the run, naming both, instead of training it under its own."""
    import importlib

    import torch

    from dwa_core.experiment import CHECKPOINT, run_experiment

    for module in imports:
        importlib.import_module(module)
    if threads:
        torch.set_num_threads(threads)
    cfg = ExperimentConfig.from_dict(cfg_dict).replace(output_dir=str(output_dir))
    if numerics_version is not None and numerics_version != numerics.VERSION:
        return outcome(cfg, output_dir, "failed",
                       error=f"this worker runs numerics {numerics.VERSION}, the sweep numerics "
                             f"{numerics_version}: start the workers with {numerics.ENV}={numerics_version}")
    where = run_dir(cfg, output_dir)
    try:
        if is_finished(where):
            return outcome(cfg, output_dir, "cached")
        status = "resumed" if (where / CHECKPOINT).exists() else "trained"
        start = time.perf_counter()
        run_experiment(cfg, resume=True, save=True)
        (where / ERROR).unlink(missing_ok=True)
        return outcome(cfg, output_dir, status, seconds=time.perf_counter() - start)
    except Exception as err:  # noqa: BLE001 - one failed run must not stop the sweep
        where.mkdir(parents=True, exist_ok=True)
        error = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc(),
                 "config": cfg.to_dict()}
        (where / ERROR).write_text(json.dumps(error, indent=1, default=str))
        return outcome(cfg, output_dir, "failed", error["error"])


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

    def update(self, result: dict, running: int) -> None:
        """Count one finished run (`result`: its outcome) with `running` still going."""
        self.done += 1
        self.failed += result["status"] == "failed"
        if not self.enabled:
            return
        text = f"finished {self.done}/{self.total} running {running} failed {self.failed}"
        if self.bar is not None:
            self.bar.set_postfix_str(f"running={running} failed={self.failed}")
            self.bar.update(1)
            if result["status"] == "failed":
                self.bar.write(f"FAILED {result['run']}: {result['error']}")
        else:
            print(f"[{text}] {result['status']} {result['run']}", file=sys.stderr)

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
    cfgs = unique(cfgs)
    if backend not in BACKENDS:
        raise ConfigError(f"backend: must be 'local' or 'ray', got {backend!r}")
    check_output_dir(output_dir, "output_dir")
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    workers = workers or default_workers()
    done = {i: outcome(c, output_dir, "cached") for i, c in enumerate(cfgs)
            if is_finished(run_dir(c, output_dir))}
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


def _run_local(cfgs, output_dir, workers, threads, bar, imports) -> list[dict]:
    outcomes: dict[int, dict] = {}
    if workers <= 1:  # in-process: approaches registered by the caller are visible
        for i, cfg in enumerate(cfgs):
            outcomes[i] = run_one(cfg.to_dict(), str(output_dir), threads, imports)
            bar.update(outcomes[i], 0)
        return [outcomes[i] for i in range(len(cfgs))]
    import multiprocessing

    check_mode()  # a bad DWA_CORE_MALLOC: one line here, not a failure in every worker
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(min(workers, len(cfgs)) or 1, mp_context=context,
                               initializer=keep_freed_memory)  # the workers are ours (allocator.py)
    try:
        with _terminated_on_sigterm():
            futures = {pool.submit(run_one, c.to_dict(), str(output_dir), threads, tuple(imports),
                                   numerics.VERSION): i
                       for i, c in enumerate(cfgs)}
            for future in as_completed(futures):
                i = futures[future]
                try:
                    outcomes[i] = future.result()
                except Exception as err:  # noqa: BLE001 - e.g. a worker killed by the OS
                    outcomes[i] = outcome(cfgs[i], output_dir, "failed", f"{type(err).__name__}: {err}")
                bar.update(outcomes[i], min(workers, len(cfgs) - len(outcomes)))
    except BaseException:  # Ctrl-C, SIGTERM (below), an error: stop the workers, not only the queue
        _stop_workers(pool)
        raise
    pool.shutdown()
    return [outcomes[i] for i in range(len(cfgs))]


class _Terminated(SystemExit):
    """SIGTERM in a sweep's parent process (e.g. `kill PID` of a background sweep)."""


@contextlib.contextmanager
def _terminated_on_sigterm():
    """SIGTERM raises _Terminated in the main thread while the pool runs, so that the workers are
    stopped with their parent instead of training on as orphans that hold their runs' locks (a run
    they leave unfinished is resumed by the next sweep). Elsewhere (not the main thread) a no-op."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise _Terminated(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and terminate the running workers (their runs stay resumable:
    checkpoints are written atomically, and the OS releases a dead process's run lock)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)


def _import_ray():
    try:
        import ray
    except ImportError as err:
        raise ConfigError("backend 'ray' needs Ray: pip install 'ray[tune]' "
                          "(and optuna for searches)") from err
    return ray


def _ensure_ray(ray, address, workers):
    """Start Ray (or join the cluster at `address`) with this process's numerics selection in the
    workers' environment (dwa_core/numerics.py), unless Ray is already running."""
    if not ray.is_initialized():
        runtime_env = {"env_vars": {numerics.ENV: str(numerics.VERSION)}}
        if address:
            ray.init(address=address, runtime_env=runtime_env)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)


def _run_ray(cfgs, output_dir, workers, threads, address, bar, imports) -> list[dict]:
    ray = _import_ray()
    _ensure_ray(ray, address, workers)
    remote = ray.remote(num_cpus=1)(run_one)
    refs = {remote.remote(c.to_dict(), str(Path(output_dir).resolve()), threads, tuple(imports),
                          numerics.VERSION): i for i, c in enumerate(cfgs)}
    outcomes, pending = {}, list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        i = refs[ready[0]]
        outcomes[i] = ray.get(ready[0])
        bar.update(outcomes[i], len(pending))
    return [outcomes[i] for i in range(len(cfgs))]


SELECT_METRIC = "valid_avg_acc"  # what a search maximises: never a test number
TEST_METRIC = "avg_acc"  # reported beside it for the chosen point, never selected on


def tune_search(base: ExperimentConfig, space: dict, output_dir, *, num_samples: int = 8,
                algorithm: str = "random", address: str | None = None, workers: int | None = None,
                threads: int = 1):
    """Ray Tune search over `space` (same format as sample_space); algorithm "optuna" uses
    ray.tune.search.optuna.OptunaSearch. Every trial reports SELECT_METRIC, the final average
    validation accuracy (aggregate.validation_score: valid_acc[T-1] averaged over the tasks), which
    the search maximises, and TEST_METRIC, the final average test accuracy, which is only reported
    (read it for the chosen point: `result.get_best_result().metrics`). Returns the Tune ResultGrid."""
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
    base_dict, version = base.to_dict(), numerics.VERSION

    def trainable(values):
        from dwa_core.aggregate import validation_score
        from dwa_core.results import Results

        cfg = ExperimentConfig.from_dict(merge(base_dict, values))
        result = run_one(cfg.to_dict(), out, threads, numerics_version=version)
        if result["status"] == "failed":
            raise RuntimeError(result["error"])
        results = Results.load(Path(result["run_dir"]) / RESULTS)
        tune.report({SELECT_METRIC: validation_score(results),
                     TEST_METRIC: metrics.average_accuracy(results.acc_matrix())})

    tuner = tune.Tuner(tune.with_resources(trainable, {"cpu": 1}), param_space=param_space,
                       tune_config=tune.TuneConfig(metric=SELECT_METRIC, mode="max", num_samples=num_samples,
                                                   search_alg=search_alg),
                       run_config=tune.RunConfig(storage_path=str(Path(out) / "tune")))
    return tuner.fit()
