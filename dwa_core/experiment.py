"""run_experiment(cfg) -> Results: the one programmatic entry point, with per-task checkpoints."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dwa_core import approaches, data, models, runs
from dwa_core.config import ConfigError, ExperimentConfig, build_params
from dwa_core.results import Results

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
RESULTS = runs.RESULTS


def resolve_device(name: str) -> torch.device:
    """"auto" picks cuda, then mps, then cpu; an unavailable device is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available (try 'auto' or 'cpu')")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device: {name!r} requested but MPS is not available (try 'auto' or 'cpu')")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Plan:
    """Everything validated from a config before any data is loaded or trained."""

    approach_cls: type
    approach_params: object
    arch: str


def validate(cfg: ExperimentConfig) -> Plan:
    """Check every name and parameter of cfg; raises ConfigError before any work is done."""
    try:
        approach_cls = approaches.get(cfg.approach)
        data.get_spec(cfg.benchmark)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    params = build_params(approach_cls.Params, cfg.approach_params, f"approach_params ({cfg.approach})")
    data.benchmark_params(cfg)
    arch = cfg.network
    if arch != "auto":
        name = models.network_name(arch, approach_cls.family)
        if arch not in models.ARCHITECTURES or name not in models.NETWORKS:
            raise ConfigError(f"network: {cfg.approach!r} needs a {approach_cls.family!r} network; "
                              f"{arch!r} has none (networks: {', '.join(models.NETWORKS.names())})")
    resolve_device(cfg.device)
    return Plan(approach_cls, params, arch)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def build_approach(cfg: ExperimentConfig, plan: Plan, bench, device):
    """Seeded model + approach for a benchmark (also used by notebooks to step through)."""
    seed_everything(cfg.seed)
    arch = bench.network if plan.arch == "auto" else plan.arch
    model = models.build(arch, plan.approach_cls.family, bench.input_shape, bench.task_classes,
                         cfg.network_params, cfg.weight_init).to(device)
    approach = plan.approach_cls(model, cfg.train, plan.approach_params, seed=cfg.seed)
    return approach


def run_experiment(cfg: ExperimentConfig, *, resume: bool = True, save: bool = True,
                   on_epoch: Callable | None = None, on_task: Callable | None = None) -> Results:
    """Train cfg.approach on every task of cfg.benchmark in order; acc[t][u] for u <= t.

    With `save`, results and a checkpoint are written to output_dir/run_name after every task,
    and a rerun of the same config resumes after the last completed task."""
    plan = validate(cfg)
    device = resolve_device(cfg.device)
    bench = data.load_benchmark(cfg, device)
    approach = build_approach(cfg, plan, bench, device)
    approach.on_epoch = on_epoch
    run_dir = runs.run_dir(cfg)
    results = Results.empty(cfg.to_dict(), [t.name for t in bench.tasks], bench.task_classes, str(device))
    if save and resume and (run_dir / CHECKPOINT).exists():
        results = _restore(run_dir, approach, results)
        log.info("resuming %s after task %d", run_dir, results.completed_tasks - 1)
    for t in range(results.completed_tasks, len(bench.tasks)):
        start = time.perf_counter()
        history = approach.fit(t, bench.tasks[t], bench.tasks[:t])
        for u in range(t + 1):
            results.loss[t][u], results.acc[t][u] = approach.test(u, bench.tasks[u])
        results.history.append(history)
        results.task_seconds.append(time.perf_counter() - start)
        results.completed_tasks = t + 1
        if save:
            _checkpoint(run_dir, approach, results)
        if on_task is not None:
            on_task(t, results)
    if save:
        results.save_text(run_dir / "acc.txt")
    return results


def _checkpoint(run_dir: Path, approach, results: Results) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {"approach": approach.state_dict(), "rng": _rng_state(), "results": results.to_dict()}
    tmp = run_dir / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    tmp.replace(run_dir / CHECKPOINT)
    results.save(run_dir / RESULTS)


def _restore(run_dir: Path, approach, fresh: Results) -> Results:
    state = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=False)
    results = Results.from_dict(state["results"])
    if results.config != fresh.config:
        raise ConfigError(f"{run_dir} holds a checkpoint of another config; remove it or change output_dir")
    approach.load_state_dict(_to_device(state["approach"], fresh.device))
    _set_rng_state(state["rng"])
    return results


def _to_device(obj, device):
    if torch.is_tensor(obj):
        return obj.to(device) if obj.is_floating_point() or obj.dtype == torch.long else obj
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_device(v, device) for v in obj]
    return obj
