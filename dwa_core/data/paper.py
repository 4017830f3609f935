"""The paper's benchmarks on the real datasets (docs/original-code.md#benchmarks): mnist2, pmnist, cifar,
mixture.

Images stay uint8 through the class selection, validation split and subsampling; `make_task`
converts to float32 and normalises last (Benchmark.to(device) then moves them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dwa_core.fields import Bounds, param, validate
from dwa_core.data import sources
from dwa_core.data.common import (
    per_class_param,
    permute_pixels,
    pixel_permutation,
    seeded_order,
    subsample_per_class,
    valid_fraction_param,
    validation_split,
)
from dwa_core.data.registry import register_benchmark
from dwa_core.data.types import Benchmark, Split, Task

MIXTURE = ("cifar10", "cifar100", "mnist", "svhn", "fashion_mnist", "traffic_signs", "facescrub",
           "not_mnist")  # docs/original-code.md#benchmarks dataset indices 0..7


def make_task(name, n_classes, train: Split, test: Split, norm, params, seed, valid_copy=False) -> Task:
    """uint8 splits -> a float Task: seeded validation split (or the original's copy of train),
    per-class training subsample (and, where params has `eval_per_class`, per-class validation and
    test subsamples), then ToTensor + Normalize with the dataset's (mean, std)."""
    if valid_copy:
        train = subsample_per_class(train, params.per_class, seed)
        # the original's mnist2 / pmnist: validation = the training set (docs/original-code.md#benchmarks)
        valid = train
    else:
        train, valid = validation_split(train, params.valid_fraction, seed)
        train = subsample_per_class(train, params.per_class, seed)
    cap = getattr(params, "eval_per_class", None)  # a CPU-sized evaluation (validation and test)
    if cap is not None:
        test = subsample_per_class(test, cap, seed)
        valid = valid if valid_copy else subsample_per_class(valid, cap, seed)
    as_float = lambda s: Split(sources.normalise(s.x, *norm), s.y)  # noqa: E731
    return Task(name, n_classes, as_float(train), as_float(valid), as_float(test))


def select(x, y, classes, offset) -> Split:
    """The rows whose label is in `classes`, relabelled `y - offset`."""
    keep = torch.isin(y, torch.as_tensor(classes))
    return Split(x[keep], y[keep] - offset)


@dataclass(frozen=True)
class MnistParams:
    """Parameters of mnist2 and pmnist."""

    per_class: int | None = per_class_param()
    valid_fraction: float = valid_fraction_param(0.1)
    valid_is_train_copy: bool = param(
        False, original=True, source="a held-out 10 % (switch: the original's copy)",
        what="the validation set (lr decay, best model) is a copy of the training set",
        doc="False: a held-out validation split, as every other benchmark (the papers select the model "
            "and decay the lr on validation data); True: the original code's mnist2 / pmnist, whose "
            "validation set is a copy of the training set (docs/original-code.md#benchmarks)")
    n_tasks: int = param(10, bounds=Bounds(1, 10), doc="number of permuted tasks (pmnist only)")

    def __post_init__(self):
        validate(self, "benchmark_params.")


@register_benchmark("mnist2", MnistParams)
def mnist2(params: MnistParams, seed: int = 0, data_dir=None, download=False) -> Benchmark:
    """MNIST in 2 tasks of 5 classes (digits 0-4, 5-9), 1x28x28, MLP (docs/original-code.md#benchmarks)."""
    raw = sources.mnist(data_dir, download)
    tasks = [make_task(f"mnist-{lo}-{lo + 4}", 5, select(raw.train_x, raw.train_y, range(lo, lo + 5), lo),
                       select(raw.test_x, raw.test_y, range(lo, lo + 5), lo), sources.MNIST_28, params, seed,
                       params.valid_is_train_copy) for lo in (0, 5)]
    return Benchmark("mnist2", tasks, (1, 28, 28), "mlp")


def pmnist_permutation(seed: int, task: int, n_pixels: int = 784) -> torch.Tensor:
    """Task i's permutation comes from random_state r*100 + i with r = seeds[i]; a function of
    (seed, task) alone (the original's cache quirk that reused old permutations is not kept;
    docs/original-code.md#benchmarks)."""
    r = int(seeded_order(10, seed)[task])
    return pixel_permutation(r * 100 + task, n_pixels)


@register_benchmark("pmnist", MnistParams)
def pmnist(params: MnistParams, seed: int = 0, data_dir=None, download=False) -> Benchmark:
    """10 permuted-MNIST tasks of 10 classes, 1x28x28, MLP (docs/original-code.md#benchmarks)."""
    raw = sources.mnist(data_dir, download)
    tasks = []
    for k in range(params.n_tasks):
        perm = pmnist_permutation(seed, k)
        permute = lambda x, perm=perm: permute_pixels(x, perm)  # noqa: E731  (uint8, before float)
        tasks.append(make_task(f"pmnist-{k}", 10, Split(permute(raw.train_x), raw.train_y),
                               Split(permute(raw.test_x), raw.test_y), sources.MNIST_28, params, seed,
                               params.valid_is_train_copy))
    return Benchmark("pmnist", tasks, (1, 28, 28), "mlp")


@dataclass(frozen=True)
class CifarParams:
    """Parameters of cifar (CIFAR-10 and CIFAR-100 in tasks of 10 classes)."""

    per_class: int | None = per_class_param()
    valid_fraction: float = valid_fraction_param(0.10, "original code (docs/original-code.md#benchmarks)")

    def __post_init__(self):
        validate(self, "benchmark_params.")


@register_benchmark("cifar", CifarParams)
def cifar(params: CifarParams, seed: int = 0, data_dir=None, download=False) -> Benchmark:
    """5 two-class CIFAR-10 tasks + 5 twenty-class CIFAR-100 tasks in seeded order, AlexNet
    (docs/original-code.md#benchmarks)."""
    if not download:
        sources.check_present(("cifar10", "cifar100"), data_dir)
    sets = {"cifar10": sources.cifar10(data_dir, download), "cifar100": sources.cifar100(data_dir, download)}
    norm = sources.NORMALISATION["cifar10"]
    tasks, order = [], [int(n) for n in seeded_order(10, seed)]
    for n in order:  # seed 0 -> [2, 8, 4, 9, 1, 6, 7, 3, 0, 5]
        name, width, k = ("cifar10", 2, n) if n < 5 else ("cifar100", 20, n - 5)
        raw, classes = sets[name], range(width * k, width * (k + 1))
        tasks.append(make_task(f"{name}-{k}", width, select(raw.train_x, raw.train_y, classes, width * k),
                               select(raw.test_x, raw.test_y, classes, width * k), norm, params, seed))
    return Benchmark("cifar", tasks, (3, 32, 32), "alexnet", {"natural_index": order})


@dataclass(frozen=True)
class MixtureParams:
    """Parameters of mixture (eight datasets, one task each)."""

    per_class: int | None = per_class_param()
    valid_fraction: float = valid_fraction_param(0.15, "original code (docs/original-code.md#benchmarks)")
    fixed_order: bool = param(False, source="original: seeded order (seed 0 = the published one)",
                              doc="True: dataset index order 0..7 instead of the seeded shuffle")

    def __post_init__(self):
        validate(self, "benchmark_params.")


def mixture_task(raw, norm, params, seed) -> Task:
    """One dataset as one task at 3x32x32: converted on uint8, then to float
    (docs/original-code.md#benchmarks)."""
    train = Split(sources.to_32x32x3(raw.train_x), raw.train_y)
    test = Split(sources.to_32x32x3(raw.test_x), raw.test_y)
    return make_task(raw.name, raw.n_classes, train, test, norm, params, seed)


@register_benchmark("mixture", MixtureParams)
def mixture(params: MixtureParams, seed: int = 0, data_dir=None, download=False) -> Benchmark:
    """The paper's 8-dataset mixture at 3x32x32, 15 % validation, AlexNet (docs/original-code.md#benchmarks).
    Seed 0 order: facescrub, mnist, cifar100, not_mnist, svhn, cifar10, traffic_signs, fashion_mnist."""
    order = list(range(len(MIXTURE))) if params.fixed_order else seeded_order(len(MIXTURE), seed)
    order = [int(i) for i in order]
    if not download:
        sources.check_present([MIXTURE[i] for i in order], data_dir)
    tasks = []
    for idx in order:
        name = MIXTURE[idx]
        raw = sources.load_source(name, data_dir, download)
        tasks.append(mixture_task(raw, sources.NORMALISATION[name], params, seed))
    return Benchmark("mixture", tasks, (3, 32, 32), "alexnet",
                     {"order": [MIXTURE[i] for i in order], "natural_index": order})
