"""Offline benchmarks on real data: Fashion-MNIST (Debian's dataset-fashion-mnist, installed as
/usr/share/datasets/fashion-mnist) and scikit-learn's digits. No download is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dwa_core.config import check
from dwa_core.data import sources
from dwa_core.data.common import seeded_order
from dwa_core.data.paper import check_common, make_task, mixture_task, select
from dwa_core.data.registry import register_benchmark
from dwa_core.data.types import Benchmark, Split

FMNIST_SHAPES = ("1x28x28", "3x32x32")


@dataclass(frozen=True)
class FashionParams:
    shape: str = "1x28x28"  # "1x28x28" (MLP) or "3x32x32" (AlexNet, the mixture's conversion)
    per_class: int | None = None
    # validation and test samples kept per class (seeded; None: all): evaluating every earlier
    # task after each task is most of a long permuted-fmnist run's time on a CPU
    eval_per_class: int | None = None
    valid_fraction: float = 0.15
    valid_is_train_copy: bool = False  # True = the original mnist2/pmnist behaviour (valid = train)
    n_tasks: int = 10  # permuted-fmnist only

    def __post_init__(self):
        check_common(self)
        check(self.shape in FMNIST_SHAPES, "benchmark_params.shape", " or ".join(FMNIST_SHAPES), self.shape)
        check(self.n_tasks >= 1, "benchmark_params.n_tasks", ">= 1", self.n_tasks)
        check(self.eval_per_class is None or self.eval_per_class >= 1, "benchmark_params.eval_per_class",
              "None or >= 1", self.eval_per_class)


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


def fmnist_permutation(seed: int, task: int, n_pixels: int) -> torch.Tensor:
    """A task's pixel permutation: a function of (seed, task) alone."""
    return torch.from_numpy(np.random.RandomState(seed * 1000 + task).permutation(n_pixels))


@register_benchmark("permuted-fmnist", FashionParams)
def permuted_fmnist(params: FashionParams, seed: int = 0, data_dir=None, download=False) -> Benchmark:
    """Fashion-MNIST under a fixed pixel permutation per task, 10 classes each (offline, real data)."""
    train, test, norm, network = _shaped(sources.fashion_mnist(data_dir, download), params.shape)
    tasks = []
    for k in range(params.n_tasks):
        perm = fmnist_permutation(seed, k, train.x[0].numel())
        permute = lambda s, perm=perm: Split(s.x.flatten(1)[:, perm].view_as(s.x), s.y)  # noqa: E731
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
    per_class: int | None = None
    # validation and test samples kept per class (seeded; None: all): evaluating every earlier
    # task after each task is most of a long permuted-fmnist run's time on a CPU
    eval_per_class: int | None = None
    valid_fraction: float = 0.15

    def __post_init__(self):
        check_common(self)


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
