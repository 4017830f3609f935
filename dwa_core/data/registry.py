"""The benchmark registry: a benchmark is a builder function plus its parameter dataclass."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dwa_core.data.types import Benchmark
from dwa_core.registry import Registry


@dataclass(frozen=True)
class BenchmarkSpec:
    """`build(params, seed=..., data_dir=..., download=...) -> Benchmark`."""

    name: str
    Params: type
    build: Callable[..., Benchmark]
    __doc__: str = ""


BENCHMARKS: Registry = Registry("benchmark")


def register_benchmark(name: str, Params: type):
    """Decorator: register a builder function under `name` with its parameter dataclass."""

    def decorator(build):
        BENCHMARKS.register(name)(BenchmarkSpec(name, Params, build, (build.__doc__ or "").strip()))
        return build
    return decorator
