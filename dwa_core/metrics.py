"""Metrics: pure functions of accuracy matrices acc[t, u] (row t: after training task t;
column u: task evaluated; entries with u > t are unused)."""

from __future__ import annotations

import numpy as np
from scipy import stats


def _square(acc) -> np.ndarray:
    acc = np.asarray(acc, dtype=float)
    if acc.ndim != 2 or acc.shape[0] != acc.shape[1]:
        raise ValueError(f"accuracy matrix must be square (T, T), got shape {acc.shape}")
    return acc


def average_accuracy(acc, t: int | None = None) -> float:
    """Mean accuracy over tasks 0..t after training task t (default: the last task)."""
    acc = _square(acc)
    t = acc.shape[0] - 1 if t is None else t
    return float(acc[t, : t + 1].mean())


def average_accuracy_curve(acc) -> np.ndarray:
    """average_accuracy after each task t."""
    return np.array([average_accuracy(acc, t) for t in range(_square(acc).shape[0])])


def backward_transfer(acc) -> float:
    """BWT = mean_{u < T-1} (acc[T-1, u] - acc[u, u]); negative means forgetting."""
    acc = _square(acc)
    T = acc.shape[0]
    if T < 2:
        return 0.0
    return float(np.mean([acc[T - 1, u] - acc[u, u] for u in range(T - 1)]))


def forgetting(acc) -> float:
    """Mean over u < T-1 of the best earlier accuracy on u minus the final one (max-based)."""
    acc = _square(acc)
    T = acc.shape[0]
    if T < 2:
        return 0.0
    return float(np.mean([acc[u:T - 1, u].max() - acc[T - 1, u] for u in range(T - 1)]))


def forgetting_ratio(acc, random_acc, joint_acc) -> np.ndarray:
    """HAT's forgetting ratio rho^{<=t} for every t (Serra et al. 2018;
    docs/original-code.md#metrics-and-figures):
    rho = (A[t,u] - R[u,u]) / (J[t,u] - R[u,u]) - 1, averaged over u = 0..t (current task included).
    -1: random level, 0: joint level. R uses the diagonal of random's matrix."""
    acc, rand, joint = _square(acc), _square(random_acc), _square(joint_acc)
    chance = np.diag(rand)
    out = []
    for t in range(acc.shape[0]):
        u = np.arange(t + 1)
        out.append(np.mean((acc[t, u] - chance[u]) / (joint[t, u] - chance[u]) - 1))
    return np.array(out)


def retention_ratio(acc, random_acc, joint_acc) -> np.ndarray:
    """The ratio plotted as the paper's Fig. 6 ("FR", the notebook's definition;
    docs/original-code.md#metrics-and-figures):
    for t >= 1, mean over u < t (current task excluded) of (A - R[t,u]) / (J - R[t,u]).
    1: joint level (nothing forgotten), 0: random level. Entry 0 is NaN."""
    acc, rand, joint = _square(acc), _square(random_acc), _square(joint_acc)
    out = [np.nan]
    for t in range(1, acc.shape[0]):
        u = np.arange(t)
        out.append(np.mean((acc[t, u] - rand[t, u]) / (joint[t, u] - rand[t, u])))
    return np.array(out)


def simple_retention_ratio(acc) -> np.ndarray:
    """For t >= 1: mean over u < t of acc[t, u] / acc[u, u]. Entry 0 is NaN."""
    acc = _square(acc)
    return np.array([np.nan] + [np.mean(acc[t, :t] / np.diag(acc)[:t]) for t in range(1, acc.shape[0])])


def percent_forgotten(acc, random_acc, joint_acc) -> float:
    """The notebook's summary: 100 * (1 - mean_t retention_ratio_t) over t >= 1."""
    return float(100 * (1 - np.nanmean(retention_ratio(acc, random_acc, joint_acc))))


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval of the mean over `values` (seeds).

    half = t_{(1+c)/2, n-1} * s / sqrt(n) with s the *sample* standard deviation (ddof=1), i.e.
    `scipy.stats.t.interval(c, n - 1, loc=mean, scale=scipy.stats.sem(values))`. A single value
    has half-width 0 (no spread to estimate). `values`: 1-d, any length >= 1; raises ValueError
    for an empty input or a confidence outside (0, 1)."""
    values = np.asarray(values, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("mean_ci: no values")
    if not 0 < confidence < 1:
        raise ValueError(f"mean_ci: confidence must be in (0, 1), got {confidence!r}")
    mean = float(values.mean())
    if values.size < 2:
        return mean, 0.0
    if np.ptp(values) == 0:  # identical values: no spread (scipy's interval would be nan)
        return mean, 0.0
    sem = stats.sem(values)  # s / sqrt(n), s with ddof=1
    low, high = stats.t.interval(confidence, values.size - 1, loc=mean, scale=sem)
    return mean, float(high - mean)
