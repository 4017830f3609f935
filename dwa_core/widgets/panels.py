"""The explorer's mask panel, redrawn after each task: for DWA the paper's Fig. 7 views (the mean
|mask| of each masked layer per task, from `introspection.introspect`, and the context embeddings
of every task seen so far on their two principal components, `plots.plot_embedding_pca`); for HAT
the unit masks a^t of every layer at s_max for each task learned so far (HAT paper Fig. 4 style:
one row per task). Other approaches have no panel."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from dwa_core import introspection, plots
from dwa_core.functional.embedding import saturation, spread

SAMPLES = 30  # test samples per task that DWA's panel introspects (a few ms on an MLP)


def panel_kind(approach_name: str) -> str | None:
    """'dwa', 'hat' or None: which panel an approach has."""
    return approach_name if approach_name in ("dwa", "hat") else None


def dwa_introspection(approach, tasks, t: int, seed: int = 0) -> dict:
    """`introspection.introspect` of tasks 0..t (SAMPLES test samples each)."""
    return introspection.introspect(approach, SimpleNamespace(tasks=list(tasks[: t + 1])), SAMPLES, seed)


def mask_means(intro: dict) -> dict[str, dict[str, float]]:
    """{task name: {layer: mean |mask| over the task's samples and the layer's weights}}."""
    return {e["name"]: {layer: float(np.abs(m).mean()) for layer, m in e["masks"].items()}
            for e in intro.values()}


def embedding_note(intro: dict) -> str:
    """One line on the embeddings E of the introspected samples of every task seen (docs/
    why-dwa-forgets.md): the share of entries saturated (|E| > 0.999) and E's spread across
    samples; a saturated E with no spread gives every input the same masks."""
    e = torch.as_tensor(np.concatenate([entry["emb"] for entry in intro.values()]))
    sat, std = saturation(e), spread(e)
    same = " - every input gets the same masks" if sat > 0.9 and std < 0.01 else ""
    return f"E: {sat:.0%} of entries saturated, spread across samples {std:.3f}{same}"


def plot_mask_means(means: dict[str, dict[str, float]], title: str = "DWA", note: str = ""):
    """Grouped bars: one group per masked layer, one bar per task (the paper's Fig. 7 summary);
    `note` (e.g. embedding_note) is written under the title."""
    import matplotlib.pyplot as plt

    tasks = list(means)
    layers = list(next(iter(means.values()))) if means else []
    fig, ax = plt.subplots(figsize=(4.2, 3.0), dpi=plots.DPI)
    width = 0.8 / max(1, len(tasks))
    for i, task in enumerate(tasks):
        xs = np.arange(len(layers)) + (i - (len(tasks) - 1) / 2) * width
        ax.bar(xs, [means[task][k] for k in layers], width, label=task, color=f"C{i % 10}")
    ax.set_xticks(range(len(layers)), [k.removesuffix(".weight") for k in layers], fontsize=7)
    ax.set_ylabel("mean |mask|", fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, title="task", title_fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title(f"{title}: mean |mask| per layer after task {len(tasks)}" + (f"\n{note}" if note else ""),
                 fontsize=8)
    fig.tight_layout()
    return fig


@torch.no_grad()
def hat_masks(approach, t: int) -> dict[str, np.ndarray]:
    """{layer: (t + 1, units) array}: the unit masks a^u at s_max of tasks u = 0..t."""
    rows = [approach.model.masks(u, approach.params.s_max) for u in range(t + 1)]
    return {k: np.stack([r[k].detach().cpu().numpy().reshape(-1) for r in rows]) for k in rows[0]}


def plot_hat_masks(masks: dict[str, np.ndarray], task_names: list[str]):
    """One heat map per layer: rows are tasks, columns units, colour the mask value in [0, 1]."""
    import matplotlib.pyplot as plt

    n = len(masks)
    rows = len(next(iter(masks.values())))
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n + 1.4, 0.3 * rows + 1.5), dpi=plots.DPI,
                             squeeze=False, sharey=True, layout="constrained")
    for ax, (layer, m) in zip(axes[0], masks.items()):
        image = ax.imshow(m, vmin=0, vmax=1, cmap="magma", aspect="auto", interpolation="nearest")
        used = (m > 0.5).mean(axis=1)
        ax.set_title(f"{layer}: units used {used[-1]:.0%} (last task)", fontsize=7)
        ax.set_xlabel("unit", fontsize=7)
        ax.tick_params(axis="x", labelsize=6)
    axes[0][0].set_yticks(range(rows), task_names[:rows], fontsize=6)
    fig.colorbar(image, ax=axes[0].tolist(), fraction=0.04, pad=0.01).ax.tick_params(labelsize=6)
    fig.suptitle(f"HAT unit masks at s_max after task {rows}", fontsize=8)
    return fig


def panel_figures(kind: str, approach, tasks, t: int, benchmark: str, seed: int = 0) -> dict:
    """{name: figure} of the panel after task t (see the module docstring)."""
    if kind == "dwa":
        intro = dwa_introspection(approach, tasks, t, seed)
        return {"dwa_masks": plot_mask_means(mask_means(intro), note=embedding_note(intro)),
                "dwa_embedding": plots.plot_embedding_pca(intro, benchmark)}
    if kind == "hat":
        return {"hat_masks": plot_hat_masks(hat_masks(approach, t), [task.name for task in tasks])}
    return {}
