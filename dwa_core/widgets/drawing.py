"""Figures as the explorer's front end needs them: base64 PNG strings inside Output widgets (raw
bytes would travel as a binary buffer, which JupyterLab shows as a broken image), the live
training curves and the session's overlay (paper Fig. 5 style)."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path

import ipywidgets as W
import numpy as np

from dwa_core import plots


def png_base64(fig) -> str:
    """The figure as a base64 PNG string (what Jupyter's display protocol carries), then closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def show_figure(output: W.Output, fig, alt: str = "figure") -> None:
    """Replace what `output` shows by `fig` (works with or without a kernel)."""
    output.outputs = ({"output_type": "display_data", "metadata": {},
                       "data": {"image/png": png_base64(fig), "text/plain": f"<{alt}>"}},)


class Figures:
    """The figures shown now, by name, each with the function that draws it: `show` draws into an
    Output widget, `export` draws them again as PNG and SVG files."""

    def __init__(self):
        self.makers: dict[str, Callable] = {}

    def show(self, name: str, output: W.Output, make: Callable) -> W.Output:
        """Draw `make()` into `output` and keep `make` under `name`; returns `output`."""
        self.makers[name] = make
        show_figure(output, make(), name)
        return output

    def drop(self, *names: str) -> None:
        """Forget the figures `names` (no longer shown)."""
        for name in names:
            self.makers.pop(name, None)

    def export(self, folder: Path) -> list[Path]:
        """Write each figure as folder/explorer_<name>.png and .svg; returns the paths."""
        import matplotlib.pyplot as plt

        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, make in self.makers.items():
            fig = make()
            for suffix in ("png", "svg"):
                paths.append(folder / f"explorer_{name}.{suffix}")
                fig.savefig(paths[-1], dpi=fig.dpi, bbox_inches="tight")
            plt.close(fig)
        return paths


def plot_history(history: list[dict]):
    """Per-epoch training curves: train/valid loss and valid accuracy, one colour per task."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(6.4, 2.6), dpi=plots.DPI)
    x = np.arange(1, len(history) + 1)
    tasks = sorted({r["task"] for r in history})
    for t in tasks:
        idx = [i for i, r in enumerate(history) if r["task"] == t]
        colour = f"C{t % 10}"
        dots = {"marker": "o", "ms": 3} if len(idx) <= 30 else {}  # a 1-epoch task is a dot, not nothing
        left.plot(x[idx], [history[i]["train_loss"] for i in idx], color=colour, label=f"task {t + 1}",
                  **dots)
        left.plot(x[idx], [history[i]["valid_loss"] for i in idx], color=colour, ls="--", **dots)
        right.plot(x[idx], [history[i]["valid_acc"] for i in idx], color=colour, **dots)
    left.set_title("loss (solid train, dashed valid)", fontsize=8)
    right.set_title("validation accuracy", fontsize=8)
    right.set_ylim(0, 1.02)
    for ax in (left, right):
        ax.set_xlabel("epoch (all tasks)", fontsize=8)
        plots.integer_ticks(ax)
        ax.tick_params(labelsize=7)
    left.legend(fontsize=6)
    fig.tight_layout()
    return fig


def plot_overlay(runs: dict):
    """Fig. 5-style overlay of several runs: one panel per task u, accuracy of u after each learned
    task t >= u, one line per run. `runs`: {label: Results}."""
    import matplotlib.pyplot as plt

    first = next(iter(runs.values()))
    n = first.n_tasks
    fig, axes = plt.subplots(1, n, figsize=(1.9 * n + 0.8, 2.4), dpi=plots.DPI, sharey=True, squeeze=False)
    for i, (label, res) in enumerate(runs.items()):
        acc = res.acc_matrix()
        for u, ax in enumerate(axes[0][: res.n_tasks]):
            ts = np.arange(u, res.completed_tasks)
            ax.plot(ts + 1, acc[ts, u], marker="o", ms=3, color=f"C{i % 10}", label=label)
    for u, ax in enumerate(axes[0]):
        ax.set_title(first.task_names[u], fontsize=8)
        ax.set_xlim(0.5, n + 0.5)
        ax.set_xticks(range(1, n + 1))
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("learned tasks", fontsize=7)
    axes[0][0].set_ylabel("test accuracy", fontsize=8)
    axes[0][-1].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    return fig
