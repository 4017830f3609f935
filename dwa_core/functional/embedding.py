"""Measures of DWA's task embedding E (paper §3.1: the context processor's output, tanh-bounded, one
d-vector per sample; docs/why-dwa-forgets.md#the-embedding): how saturated it is, how much it varies
across samples and across tasks, and whether the task can be read from it. Pure functions of
tensors, used by dwa_core.diagnosis.

An embedding whose entries all sit at ±1 and that no longer varies across samples gives every input
the same masks: the masks no longer depend on the input, let alone on its task."""

from __future__ import annotations

import torch

SATURATED = 0.999  # |E| above this counts as saturated (tanh(3.8) = 0.999)


def saturation(e: torch.Tensor, threshold: float = SATURATED) -> float:
    """Fraction of the entries of E (B, d) whose magnitude exceeds `threshold`, in [0, 1]."""
    return float((e.abs() > threshold).float().mean())


def spread(e: torch.Tensor) -> float:
    """The mean over the d coordinates of E's standard deviation across its B samples (population
    form, B >= 1): 0 when every sample gets the same embedding; at most 1 for a tanh embedding."""
    return float(e.std(dim=0, unbiased=False).mean())


def task_spread(embeddings: list[torch.Tensor]) -> float:
    """The spread (as `spread`) of the per-task mean embeddings: [E_u (B_u, d) for each task u]."""
    return spread(torch.stack([e.mean(dim=0) for e in embeddings]))


def nearest_centroid_accuracy(embeddings: list[torch.Tensor]) -> float:
    """Task separability of E: [E_u (B_u, d), B_u >= 2 for each task u] -> the accuracy, in [0, 1],
    of telling each sample's task by the nearest task centroid (Euclidean), the centroids computed
    on each task's even-indexed samples and the accuracy measured on its odd-indexed ones. Chance
    is 1 / len(embeddings); ties (identical centroids) go to the lowest task index, so a collapsed
    embedding scores chance or below. ValueError for fewer than 2 tasks or a task under 2 samples."""
    if len(embeddings) < 2 or min(len(e) for e in embeddings) < 2:
        raise ValueError("nearest_centroid_accuracy: needs >= 2 tasks of >= 2 samples each")
    centroids = torch.stack([e[0::2].mean(dim=0) for e in embeddings])  # (T, d)
    correct = total = 0
    for u, e in enumerate(embeddings):
        held_out = e[1::2]  # (B_u / 2, d)
        guess = torch.cdist(held_out, centroids).argmin(dim=1)
        correct += int((guess == u).sum())
        total += len(held_out)
    return correct / total
