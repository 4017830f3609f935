"""The measures of docs/why-dwa-forgets.md as pure functions of tensors: how far masks, weights and
embeddings of an earlier task moved between two models, and how much two tasks' masks overlap.

Each ratio also comes as its (numerator, denominator) parts, so a measure over several layers (or
chunks of samples) is the ratio of the summed parts, not a mean of ratios. A zero denominator gives
NaN."""

from __future__ import annotations

import math

import torch

THRESHOLD = 0.5  # |H| above it: the sample "uses" the weight (mask crossings, binary overlap)


def ratio(num: float, den: float) -> float:
    """num / den, NaN when den is 0."""
    return num / den if den > 0 else math.nan


def overlap_parts(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(Σ_i min(a_i, b_i), Σ_i max(a_i, b_i)) of two non-negative tensors of the same shape."""
    return float(torch.minimum(a, b).sum()), float(torch.maximum(a, b).sum())


def soft_overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Σ min(a, b) / Σ max(a, b) in [0, 1] (the soft Jaccard index) of two non-negative tensors of
    one shape, e.g. two tasks' sample-mean |H|: 1 for equal masks, 0 for disjoint ones."""
    return ratio(*overlap_parts(a, b))


def binary_overlap_parts(a: torch.Tensor, b: torch.Tensor,
                         threshold: float = THRESHOLD) -> tuple[float, float]:
    """(|A ∩ B|, |A ∪ B|) for A = {i: a_i > threshold}, B = {i: b_i > threshold}: the parts of
    their Jaccard index."""
    above_a, above_b = a > threshold, b > threshold
    return float((above_a & above_b).sum()), float((above_a | above_b).sum())


def change_parts(before: torch.Tensor, after: torch.Tensor, weight=None) -> tuple[float, float]:
    """(Σ_i m_i |after_i - before_i|, Σ_i m_i |before_i|); m = `weight` (broadcast) or ones."""
    m = torch.ones_like(before) if weight is None else weight
    return float((m * (after - before).abs()).sum()), float((m * before.abs()).sum())


def weighted_change(before: torch.Tensor, after: torch.Tensor, weight=None) -> float:
    """Σ m |W_after - W_before| / Σ m |W_before|: the relative change of W, weighted by m (for the
    diagnosis' weight_change, task u's sample-mean |H_u| after task u; None: unweighted). >= 0."""
    return ratio(*change_parts(before, after, weight))


def relative_drift(ref: torch.Tensor, new: torch.Tensor) -> float:
    """mean_b ||new_b - ref_b|| / mean_b ||ref_b|| over the rows b of two (B, d) tensors, e.g. the
    embeddings E of the same samples from two models. >= 0."""
    return ratio(float((new - ref).norm(dim=1).sum()), float(ref.norm(dim=1).sum()))


def mask_pair_sums(h_ref: torch.Tensor, h_new: torch.Tensor, w_ref: torch.Tensor, w_new: torch.Tensor,
                   threshold: float = THRESHOLD) -> torch.Tensor:
    """(5,) sums over a chunk of samples of masks H (B, *weight shape) from two models and their
    weights W (*weight shape): Σ|H_new - H_ref|, the number of entries whose |H| is on the other
    side of `threshold`, the number of entries, Σ_b|W_new ⊙ H_new,b - W_ref ⊙ H_ref,b| and
    Σ_b|W_ref ⊙ H_ref,b| (sample b's effective weight W ⊙ H_b, paper §3.2). Stays on the device."""
    crossed = (h_ref.abs() > threshold) != (h_new.abs() > threshold)
    effective_ref = w_ref * h_ref  # (B, out, in)
    return torch.stack([(h_new - h_ref).abs().sum(), crossed.sum().to(h_ref.dtype),
                        torch.tensor(float(h_ref.numel()), dtype=h_ref.dtype, device=h_ref.device),
                        (w_new * h_new - effective_ref).abs().sum(), effective_ref.abs().sum()])
