"""Offline benchmarks on real data: Fashion-MNIST (Debian's dataset-fashion-mnist, installed as
/usr/share/datasets/fashion-mnist) and scikit-learn's digits. No download is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from dwa_core.fields import Bounds, param, validate
from dwa_core.data import sources
from dwa_core.data.common import (
    eval_per_class_param,
    per_class_param,
    permute_pixels,
    seeded_order,
    task_permutation,
    valid_fraction_param,
)
from dwa_core.data.paper import make_task, mixture_task, select
from dwa_core.data.registry import register_benchmark
from dwa_core.data.types import Benchmark, Split

@dataclass(frozen=True)
class FashionParams:
    """Parameters of split-fmnist and permuted-fmnist."""

    shape: Literal["1x28x28", "3x32x32"] = param(
        "1x28x28", doc="'1x28x28' (the MLP) or '3x32x32' (AlexNet, the mixture's conversion)")
    per_class: int | None = per_class_param()
    eval_per_class: int | None = eval_per_class_param()
    valid_fraction: float = valid_fraction_param(0.15)
    valid_is_train_copy: bool = param(False, doc="True: the original mnist2 / pmnist behaviour (validation = "
                                                 "the training set)")
    n_tasks: int = param(10, bounds=Bounds(1), doc="number of permuted tasks (permuted-fmnist only)")

    def __post_init__(self):
        validate(self, "benchmark_params.")


def _shaped(raw, shape):
    """(train Split, test Split, (mean, std), network) of Fashion-MNIST at `shape`, still uint8."""
    if shape == "1x28x28":
        return Split(raw.train_x, raw.train_y), Split(raw.test_x, raw.test_y), sources.FASHION_28, "mlp"
    return (Split(sources.to_32x32x3(raw.train_x), raw.train_y), Split(sources.to_32x32x3(raw.test_x),
            raw.test_y), sources.NORMALISATION["fashion_mnist"], "alexnet")


@register_benchmark("split-fmnist", FashionParams)
def split_fmnist(params: FashionParams, seed: int = 0, data_dir=None, download=False) -> Benchmark:
    """Fashion-MNIST in 5 two-class tasks {0,1}, {2,3}, ... in seeded order (offline, real data)."""
    train, test, norm, network = _shaped(sources.fashion_mnist(data_dir, download), params.shape)
    order = [int(k) for k in seeded_order(5, seed)]
    tasks = [make_task(f"fmnist-{2 * k}-{2 * k + 1}", 2, select(train.x, train.y, [2 * k, 2 * k + 1], 2 * k),
                       select(test.x, test.y, [2 * k, 2 * k + 1], 2 * k), norm, params, seed,
                       params.valid_is_train_copy) for k in order]
    return Benchmark("split-fmnist", tasks, tuple(tasks[0].train.x.shape[1:]), network,
                     {"natural_index": order})


@register_benchmark("permuted-fmnist", FashionParams)
def permuted_fmnist(params: FashionParams, seed: int = 0, data_dir=None, download=False) -> Benchmark:
    """Fashion-MNIST under a fixed pixel permutation per task, 10 classes each (offline, real data)."""
    train, test, norm, network = _shaped(sources.fashion_mnist(data_dir, download), params.shape)
    tasks = []
    for k in range(params.n_tasks):
        perm = task_permutation(seed, k, train.x[0].numel())
        permute = lambda s, perm=perm: Split(permute_pixels(s.x, perm), s.y)  # noqa: E731
        tasks.append(make_task(f"permuted-fmnist-{k}", 10, permute(train), permute(test), norm, params, seed,
                               params.valid_is_train_copy))
    return Benchmark("permuted-fmnist", tasks, tuple(tasks[0].train.x.shape[1:]), network)


def digits_raw() -> sources.RawDataset:
    """scikit-learn digits as uint8 1x28x28 (0..16 scaled to 0..255, bilinear 8->28), fixed 20 % test."""
    from dwa_core.data.digits import load_digits_splits

    train, test = load_digits_splits()  # float (N, 1, 8, 8) in [0, 1]
    up = lambda x: (F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)  # noqa: E731
                    .clamp(0, 1) * 255).round().to(torch.uint8)
    return sources.RawDataset("digits", 10, up(train.x), train.y, up(test.x), test.y)


@dataclass(frozen=True)
class MixtureOfflineParams:
    """Parameters of mixture-offline."""

    per_class: int | None = per_class_param()
    eval_per_class: int | None = eval_per_class_param()
    valid_fraction: float = valid_fraction_param(0.15)

    def __post_init__(self):
        validate(self, "benchmark_params.")


@register_benchmark("mixture-offline", MixtureOfflineParams)
def mixture_offline(params: MixtureOfflineParams, seed: int = 0, data_dir=None, download=False) -> Benchmark:
    """The mixture's pipeline (docs/original-code.md#benchmarks: 3x32x32, 15 % validation, per-dataset
    normalisation, seeded
    order shuffle(arange(n))) over the datasets present offline: Fashion-MNIST (Debian's
    dataset-fashion-mnist) and scikit-learn's digits (8x8 upscaled to 28, zero-padded to 32, grey
    copied to 3 channels; normalised with its own training mean/std). NOT the paper's 8 datasets."""
    raws = [sources.fashion_mnist(data_dir, download), digits_raw()]
    tasks, order = [], [int(i) for i in seeded_order(len(raws), seed)]
    for idx in order:
        raw = raws[idx]
        if raw.name == "digits":
            padded = sources.to_32x32x3(raw.train_x).float() / 255
            norm = ((padded.mean().item(),), (padded.std().item(),))  # stats include the padding
        else:
            norm = sources.NORMALISATION[raw.name]
        tasks.append(mixture_task(raw, norm, params, seed))
    return Benchmark("mixture-offline", tasks, (3, 32, 32), "alexnet",
                     {"order": [t.name for t in tasks], "natural_index": order})
