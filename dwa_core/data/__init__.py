"""Datasets and benchmarks. `load_benchmark(cfg)` builds a config's benchmark on its device."""

from __future__ import annotations

import importlib
import pkgutil

from dwa_core.config import ConfigError, build_params
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


def benchmark_params(cfg):
    """The validated parameter dataclass of cfg's benchmark."""
    spec = get_spec(cfg.benchmark)
    return build_params(spec.Params, cfg.benchmark_params, f"benchmark_params ({cfg.benchmark})")


def load_benchmark(cfg, device="cpu") -> Benchmark:
    """Build cfg's benchmark, truncated to cfg.max_tasks, on `device`."""
    spec = get_spec(cfg.benchmark)
    params = benchmark_params(cfg)
    bench = spec.build(params, seed=cfg.seed, data_dir=cfg.data_dir, download=cfg.download)
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
           "get_spec", "benchmark_params", "names", "describe", "ConfigError"]
