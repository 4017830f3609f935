"""Penalties and weight merges of the regularisation baselines (docs/original-code.md#approaches, #ewc).

Parameters and their old values θ* (`old_params`) are dicts {name: tensor}, as
`model.named_parameters()` gives them."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F


def ewc_penalty(params: Iterable[tuple[str, torch.Tensor]], old_params: dict, fisher: dict) -> torch.Tensor:
    """EWC: sum_k 1/2 F_k (theta_k - theta*_k)^2 over every parameter, heads included."""
    terms = [(fisher[name] * (p - old_params[name]).pow(2)).sum() for name, p in params]
    return 0.5 * torch.stack(terms).sum()


def l2_transfer(params: Iterable[tuple[str, torch.Tensor]], old_params: dict) -> torch.Tensor:
    """L2 transfer (IMM): 1/2 sum_k (theta_k - theta_old_k)^2."""
    terms = [(p - old_params[name]).pow(2).sum() for name, p in params]
    return 0.5 * torch.stack(terms).sum()


def distillation_ce(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                    temperature: float = 1.0, eps: float = 1e-5) -> torch.Tensor:
    """LwF's knowledge-distillation cross-entropy, as the original code computes it
    (docs/original-code.md#approaches).

    Both softmaxes are raised to 1/T and renormalised (= softmax(z / T)); eps / n_classes is added
    to the student's distribution, which is renormalised; -sum p_old log p_new, batch mean."""
    teacher = F.softmax(teacher_logits / temperature, dim=1)  # (B, C)
    student = F.softmax(student_logits / temperature, dim=1)  # (B, C)
    student = student + eps / student.shape[1]
    student = student / student.sum(1, keepdim=True)
    return -(teacher * student.log()).sum(1).mean()


def feature_penalty(features: torch.Tensor, old_features: torch.Tensor,
                    reduction: str = "mean") -> torch.Tensor:
    """LFL: 1/2 ||h_old - h||^2 per sample (summed over the units), then the batch "mean" or, as the
    original code does, the batch "sum" (whose weight, and gradient step, grow with the batch size)."""
    per_sample = 0.5 * (old_features - features).pow(2).flatten(1).sum(1)  # (B,)
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def mean_merge(current: dict, merged_old: dict, t: int) -> dict[str, torch.Tensor]:
    """IMM-mean: theta <- (theta_t + t * theta_prev_merged) / (t + 1), a running mean of the tasks'
    solutions (t = index of the task just learned)."""
    return {name: (p + t * merged_old[name]) / (t + 1) for name, p in current.items()}


def mode_merge(current: dict, old: dict, fisher_new: dict, fisher_old: dict,
               eps: float = 1e-12) -> dict[str, torch.Tensor]:
    """IMM-mode: theta <- (F_new theta + F_old theta_old) / (F_new + F_old), the mode of the
    product of the two diagonal Gaussians. eps on both weights keeps entries no task's loss
    reached (F_new = F_old = 0, e.g. the heads of later tasks) at the plain mean."""
    merged = {}
    for name, p in current.items():
        w_new, w_old = fisher_new[name] + eps, fisher_old[name] + eps
        merged[name] = (w_new * p + w_old * old[name]) / (w_new + w_old)
    return merged


def parameters_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of a model's parameters ({name: tensor}), e.g. θ* after a task."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@torch.no_grad()
def load_parameters(model: torch.nn.Module, values: dict) -> None:
    """Copy `values` into the model's parameters in place (the optimizer keeps its references)."""
    for name, p in model.named_parameters():
        if name in values:
            p.copy_(values[name])


def old_params_of(state: dict) -> dict | None:
    """θ* from an approach's saved extra state ("old_params"; checkpoints written before the rename
    call it "anchor")."""
    return state["old_params"] if "old_params" in state else state["anchor"]
