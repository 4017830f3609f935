"""One output head per task; a network computes only the head it is asked for."""

from __future__ import annotations

import torch
from torch import nn


class MultiHead(nn.Module):
    """`heads[t]` is Linear(features, n_classes[t]). `t` is a task id, or a (B,) tensor of task ids
    (joint training): then logits are padded with -inf to the widest head, per sample."""

    def __init__(self, in_features: int, task_classes: list[int]):
        super().__init__()
        self.task_classes = list(task_classes)
        self.heads = nn.ModuleList(nn.Linear(in_features, n) for n in task_classes)

    def forward(self, h: torch.Tensor, t) -> torch.Tensor:
        if not torch.is_tensor(t):
            return self.heads[t](h)
        width = max(self.task_classes)
        logits = h.new_full((h.shape[0], width), float("-inf"))  # (B, max classes)
        for task in t.unique().tolist():  # at most T heads, not a per-sample loop
            rows = t == task
            logits[rows, : self.task_classes[task]] = self.heads[task](h[rows])
        return logits


def head_parameter_names(model: nn.Module) -> set[str]:
    """The names (as `model.named_parameters()` and `model.state_dict()` give them) of the parameters
    of the output heads, `model.last`: found by identity, not by a name prefix, so that an approach
    asks the network which parameters are task-specific (as `task_parameters(t)` does for the
    progressive columns)."""
    heads = {id(p) for p in model.last.parameters()}
    return {name for name, p in model.named_parameters() if id(p) in heads}
