"""Datasets and benchmarks. `load_benchmark(cfg)` builds a config's benchmark on its device."""

from __future__ import annotations

import importlib
import os
import pkgutil
from pathlib import Path

from dwa_core.coerce import ConfigError, build_params, check, coerce_value
from dwa_core.data.registry import BENCHMARKS, BenchmarkSpec, register_benchmark
from dwa_core.data.types import Benchmark, Split, Task
from dwa_core.registry import summary

_SKIP = {"types", "registry", "common"}


def _import_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name not in _SKIP:
            importlib.import_module(f"{__name__}.{info.name}")


def get_spec(name: str) -> BenchmarkSpec:
    _import_all()
    return BENCHMARKS.get(name)


TASK_ORDERS = ("seeded", "natural")


def task_order(cfg) -> str | tuple[int, ...]:
    """benchmark_params["task_order"] of any benchmark: "seeded" (default: the original code's
    shuffle of the tasks by the seed), "natural" (the dataset's order: classes 0-1, 2-3, ...;
    datasets by index) or a list of natural task indices (e.g. [4, 3, 2, 1, 0] or another paper's
    order; a subset is allowed). ConfigError on anything else."""
    order = cfg.benchmark_params.get("task_order", "seeded")
    if isinstance(order, str) and order in TASK_ORDERS:
        return order
    name = f"benchmark_params ({cfg.benchmark}).task_order"
    if isinstance(order, str) and not order.strip().startswith("["):
        raise ConfigError(f"{name}: must be 'seeded', 'natural' or a list of task indices, got {order!r}")
    indices = coerce_value(order, tuple[int, ...], name)
    check(len(indices) >= 1 and len(set(indices)) == len(indices) and min(indices) >= 0, name,
          "a non-empty list of distinct task indices >= 0", order)
    return indices


def benchmark_params(cfg):
    """The validated parameter dataclass of cfg's benchmark (task_order is checked apart, as it is
    common to every benchmark)."""
    spec = get_spec(cfg.benchmark)
    task_order(cfg)
    values = {k: v for k, v in cfg.benchmark_params.items() if k != "task_order"}
    return build_params(spec.Params, values, f"benchmark_params ({cfg.benchmark})")


def reorder(bench: Benchmark, order) -> Benchmark:
    """Put bench's tasks in `order` (see task_order); builders record each task's natural index in
    bench.info["natural_index"] (none recorded: the tasks are built in their natural order)."""
    if order == "seeded":
        return bench
    natural = bench.info.get("natural_index", list(range(len(bench.tasks))))
    by_index = dict(zip(natural, bench.tasks))
    wanted = sorted(natural) if order == "natural" else list(order)
    unknown = [i for i in wanted if i not in by_index]
    if unknown:
        valid = ", ".join(f"{i}={by_index[i].name}" for i in sorted(by_index))
        raise ConfigError(f"benchmark_params ({bench.name}).task_order: no task {unknown}; valid: {valid}")
    bench.tasks = [by_index[i] for i in wanted]
    bench.info["natural_index"] = wanted
    if "order" in bench.info:
        bench.info["order"] = [t.name for t in bench.tasks]
    return bench


def check_data_dir(data_dir) -> None:
    """A data dir given but unusable (a file, or a folder this process cannot read) is a
    ConfigError naming it; a missing one is fine (it is created when something is cached)."""
    if data_dir is None:
        return
    path = Path(data_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"data_dir: {path} is not a directory")
    if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
        raise ConfigError(f"data_dir: {path} is not readable (permission denied)")


def load_benchmark(cfg, device="cpu") -> Benchmark:
    """Build cfg's benchmark, truncated to cfg.max_tasks, on `device`."""
    spec = get_spec(cfg.benchmark)
    params = benchmark_params(cfg)
    bench = spec.build(params, seed=cfg.seed, data_dir=cfg.data_dir, download=cfg.download)
    bench = reorder(bench, task_order(cfg))
    if cfg.max_tasks is not None:
        bench.tasks = bench.tasks[: cfg.max_tasks]
    return bench.to(device)


def names() -> list[str]:
    _import_all()
    return BENCHMARKS.names()


def describe() -> dict[str, str]:
    _import_all()
    return {name: summary(BENCHMARKS.get(name).__doc__) for name in BENCHMARKS.names()}


__all__ = ["Benchmark", "Split", "Task", "BENCHMARKS", "register_benchmark", "load_benchmark",
           "get_spec", "benchmark_params", "check_data_dir", "names", "describe", "ConfigError"]
