"""Offline benchmarks on scikit-learn's handwritten digits (1,797 real 8x8 images, 10 classes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from dwa_core.fields import Bounds, check, param, validate
from dwa_core.data.common import (
    per_class_param,
    permute_pixels,
    seeded_order,
    subsample_per_class,
    task_permutation,
    to_shape,
    valid_fraction_param,
    validation_split,
)
from dwa_core.data.registry import register_benchmark
from dwa_core.data.types import Benchmark, Split, Task

TEST_FRACTION = 0.2  # digits ship without a test split: a fixed 20 % (the same for every seed)


def load_digits_splits() -> tuple[Split, Split]:
    """(train, test) of the digits as float (N, 1, 8, 8) in [0, 1], fixed split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long)
    order = torch.from_numpy(seeded_order(len(y), 12345))
    n_test = int(TEST_FRACTION * len(y))
    test, train = order[:n_test], order[n_test:]
    return Split(x[train], y[train]), Split(x[test], y[test])


def _normalise(train: Split, *others: Split) -> list[Split]:
    mean, std = train.x.mean(), train.x.std()
    return [Split((s.x - mean) / std, s.y) for s in (train, *others)]


@dataclass(frozen=True)
class DigitsParams:
    """Parameters of split-digits and permuted-digits."""

    shape: Literal["native", "1x28x28", "3x32x32"] = param(
        "native", doc="'native' (1x8x8), '1x28x28' (MLP experiments) or '3x32x32' (AlexNet)")
    per_class: int | None = per_class_param()
    valid_fraction: float = valid_fraction_param(0.15)
    n_tasks: int = param(5, bounds=Bounds(1), doc="number of tasks (split-digits: 5 only)")

    def __post_init__(self):
        validate(self, "benchmark_params.")


def _make_task(name, n_classes, train, test, params, seed) -> Task:
    train, valid = validation_split(train, params.valid_fraction, seed)
    train = subsample_per_class(train, params.per_class, seed)
    train, valid, test = _normalise(train, valid, test)
    shaped = [Split(to_shape(s.x, params.shape), s.y) for s in (train, valid, test)]
    return Task(name, n_classes, *shaped)


def _pair(split: Split, k: int) -> Split:
    """Digits 2k and 2k+1, relabelled 0 and 1."""
    rows = (split.y // 2) == k
    return Split(split.x[rows], split.y[rows] % 2)


def _permute(split: Split, perm: torch.Tensor) -> Split:
    return Split(permute_pixels(split.x, perm), split.y)


def _network_for(shape: str) -> str:
    return "alexnet" if shape == "3x32x32" else "mlp"


@register_benchmark("split-digits", DigitsParams)
def split_digits(params: DigitsParams, seed: int = 0, **_) -> Benchmark:
    """Digits split into 5 two-class tasks {0,1}, {2,3}, ...; task order drawn from the seed."""
    check(params.n_tasks == 5, "benchmark_params.n_tasks", "5 for split-digits", params.n_tasks)
    train, test = load_digits_splits()
    tasks, order = [], [int(k) for k in seeded_order(5, seed)]
    for k in order:
        pair = [_pair(split, k) for split in (train, test)]
        tasks.append(_make_task(f"digits-{2 * k}-{2 * k + 1}", 2, *pair, params, seed))
    shape = tuple(tasks[0].train.x.shape[1:])
    return Benchmark("split-digits", tasks, shape, _network_for(params.shape), {"natural_index": order})


@register_benchmark("permuted-digits", DigitsParams)
def permuted_digits(params: DigitsParams, seed: int = 0, **_) -> Benchmark:
    """Digits under a different fixed pixel permutation per task (10 classes each)."""
    train, test = load_digits_splits()
    tasks = []
    for k in range(params.n_tasks):
        task = _make_task(f"permuted-digits-{k}", 10, train, test, params, seed)
        n_pixels = task.train.x[0].numel()
        perm = task_permutation(seed, k, n_pixels)
        splits = [_permute(s, perm) for s in (task.train, task.valid, task.test)]
        tasks.append(Task(task.name, 10, *splits))
    shape = tuple(tasks[0].train.x.shape[1:])
    return Benchmark("permuted-digits", tasks, shape, _network_for(params.shape))
