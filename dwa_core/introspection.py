"""Introspection of a DWA network (docs/original-code.md#introspection): for N random test samples of
every task, the
images, targets, outputs, embeddings and materialised masks (data for paper Fig. 7 and an embedding
PCA). Numpy arrays in plain dicts, so they pickle/plot without torch."""

from __future__ import annotations

import torch


@torch.no_grad()
def introspect(approach_or_model, benchmark, n_per_task: int = 10, seed: int = 0,
               with_masks: bool = True) -> dict[int, dict]:
    """{task u: {'name', 'images', 'targets', 'output', 'emb', 'masks': {weight name: (n, *shape)}}}."""
    model = getattr(approach_or_model, "model", approach_or_model)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for u, task in enumerate(benchmark.tasks[: len(model.last.heads)]):
        rows = torch.randperm(len(task.test), generator=generator)[:n_per_task]
        x, y = task.test.x[rows].to(device), task.test.y[rows]
        logits = model(x, u)
        state = model.state
        masks = {name: m.materialise().cpu().numpy() for name, m in state.masks.items()} if with_masks else {}
        out[u] = {"name": task.name, "images": x.cpu().numpy(), "targets": y.cpu().numpy(),
                  "output": logits.cpu().numpy(), "emb": state.embedding.cpu().numpy(), "masks": masks}
    model.train(was_training)
    return out
