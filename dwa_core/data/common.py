"""Helpers shared by every benchmark builder: seeded splits, subsampling, reshaping."""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from dwa_core.fields import Bounds, ConfigError, param
from dwa_core.data.types import Split

SHAPES = {"native": None, "1x28x28": (1, 28, 28), "3x32x32": (3, 32, 32)}
log = logging.getLogger(__name__)


def per_class_param():
    """The `per_class` field every benchmark's Params declares."""
    return param(None, bounds=Bounds(1),
                 doc="training samples kept per class (seeded; None: all; smoke runs)")


def eval_per_class_param():
    """The `eval_per_class` field of the Fashion-MNIST benchmarks."""
    return param(None, bounds=Bounds(1), doc="validation and test samples kept per class (seeded; None: "
                                             "all): evaluating every earlier task after each task is most "
                                             "of a long permuted run's time on a CPU")


def valid_fraction_param(default: float, source: str = ""):
    """The `valid_fraction` field: the held-out share of the training images."""
    return param(default, bounds=Bounds(0, 1, low_open=True, high_open=True), source=source,
                 doc="fraction of the training images held out for validation (seeded)")


def pixel_permutation(seed: int, n_pixels: int) -> torch.Tensor:
    """(n_pixels,) int64: the permutation drawn by numpy's RandomState(seed) (permuted benchmarks
    pass a seed that is a function of (run seed, task) alone)."""
    return torch.from_numpy(np.random.RandomState(seed).permutation(n_pixels))


def task_permutation(seed: int, task: int, n_pixels: int) -> torch.Tensor:
    """The permutation of task `task` of a permuted-digits / permuted-fmnist run with `seed`: a
    function of (seed, task) alone (RandomState(seed * 1000 + task))."""
    return pixel_permutation(seed * 1000 + task, n_pixels)


def permute_pixels(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) images with their flattened pixels reordered by `perm`, same shape and dtype."""
    return x.flatten(1)[:, perm].view_as(x)


def seeded_order(n: int, seed: int) -> np.ndarray:
    """The original code's rule `sklearn.utils.shuffle(arange(n), random_state=seed)`."""
    order = np.arange(n)
    np.random.RandomState(seed).shuffle(order)
    return order


def validation_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Hold out the first floor(fraction*N) rows of a seeded shuffle as validation
    (docs/original-code.md#benchmarks)."""
    if not 0 < fraction < 1:
        raise ConfigError(f"valid_fraction: must be in (0, 1), got {fraction!r}")
    order = torch.from_numpy(seeded_order(len(split), seed))
    n_valid = int(fraction * len(split))
    valid, train = order[:n_valid], order[n_valid:]
    return Split(split.x[train], split.y[train]), Split(split.x[valid], split.y[valid])


_CAPPED: set = set()  # the per_class values already reported


def _say_capped(per_class: int, smallest: int) -> None:
    if per_class not in _CAPPED:
        _CAPPED.add(per_class)
        log.warning("benchmark_params.per_class=%d is more than some classes have (e.g. %d samples): "
                    "those classes keep all of theirs", per_class, smallest)


def subsample_per_class(split: Split, per_class: int | None, seed: int) -> Split:
    """Keep at most `per_class` samples of every class (seeded), in their original order. A
    per_class above what a class has keeps all of that class, and says so once (a warning)."""
    if per_class is None:
        return split
    if per_class < 1:
        raise ConfigError(f"per_class: must be None or >= 1, got {per_class!r}")
    rng = np.random.RandomState(seed)
    y = split.y.cpu().numpy()
    smallest = int(np.bincount(y)[np.unique(y)].min()) if len(y) else 0
    if per_class > smallest:
        _say_capped(per_class, smallest)
    keep = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)])
    keep = torch.from_numpy(np.sort(keep))
    return Split(split.x[keep], split.y[keep])


def to_shape(x: torch.Tensor, shape: str) -> torch.Tensor:
    """Bring (N, C, H, W) images to a named network shape: "native", "1x28x28" (bilinear resize)
    or "3x32x32" (resize to 28 if needed, zero-pad to 32, grey copied to 3 channels)."""
    if shape not in SHAPES:
        raise ConfigError(f"shape: must be one of {', '.join(SHAPES)}, got {shape!r}")
    if shape == "native":
        return x
    if x.shape[-1] not in (28, 32):
        x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    if shape == "1x28x28":
        return x.mean(1, keepdim=True) if x.shape[1] != 1 else x
    if x.shape[-1] == 28:
        x = F.pad(x, (2, 2, 2, 2))
    return x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x
