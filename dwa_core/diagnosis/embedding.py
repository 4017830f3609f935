"""DWA's task embedding through a run (docs/why-dwa-forgets.md#the-embedding): for the model after
every task k and the samples of every task u <= k, how saturated E_u^(k) is and how much it varies
across samples; for every k, how much the task means differ and whether the task can be read from E
(nearest-centroid task accuracy). The measures are dwa_core.functional.embedding's.

`embedding_frame(models, inputs)` works on the models and inputs dwa_core.diagnosis loads;
`pair_columns` gives the per-(t, u) columns the diagnosis rows carry."""

from __future__ import annotations

import torch

from dwa_core.functional.embedding import nearest_centroid_accuracy, saturation, spread, task_spread

# the columns of embedding_frame, beside run, k and u
COLUMNS = ("saturation", "spread", "task_spread", "task_separability")


@torch.no_grad()
def embeddings(model, x: torch.Tensor, u: int, chunk: int = 64) -> torch.Tensor:
    """E (B, d) of `model` (a DWA network, in eval mode) on the inputs x (B, ...) with task id u."""
    parts = []
    for rows in x.split(chunk):
        model(rows, u)
        parts.append(model.state.embedding.detach())
    return torch.cat(parts)


def embedding_frame(models: list, inputs: list[torch.Tensor], run: str = ""):
    """One row per (k, u), u <= k: the model after task k (models[k]) on task u's inputs
    (inputs[u], (B_u, ...), B_u >= 2). Columns: run, k, u, saturation and spread of E_u^(k)
    (fractions in [0, 1] and a standard deviation in [0, 1], functional.embedding), and, the same
    on every row of k, task_spread and task_separability over tasks 0..k (NaN for k = 0, where
    there is only one task)."""
    import pandas as pd

    rows = []
    for k, model in enumerate(models):
        seen = [embeddings(model, inputs[u], u) for u in range(k + 1)]
        across = {"task_spread": task_spread(seen) if k else float("nan"),
                  "task_separability": nearest_centroid_accuracy(seen) if k else float("nan")}
        for u, e in enumerate(seen):
            rows.append({"run": run, "k": k, "u": u, "saturation": saturation(e), "spread": spread(e),
                         **across})
    return pd.DataFrame(rows)


def pair_columns(frame, t: int, u: int) -> dict:
    """The diagnosis' embedding columns of the pair (t, u), from one run's embedding_frame:
    embedding_saturation / embedding_spread (E_u^(t)), embedding_saturation_before (E_u^(u)) and
    task_separability (over tasks 0..t after task t)."""
    after = frame[(frame["k"] == t) & (frame["u"] == u)].iloc[0]
    before = frame[(frame["k"] == u) & (frame["u"] == u)].iloc[0]
    return {"embedding_saturation": float(after["saturation"]), "embedding_spread": float(after["spread"]),
            "embedding_saturation_before": float(before["saturation"]),
            "task_separability": float(after["task_separability"])}


def by_task(frames: dict):
    """{label: concatenated embedding_frames of its runs} -> one row per (label, k): the means over
    the label's runs and tasks u <= k of saturation, spread, task_spread, task_separability."""
    import pandas as pd

    frame = pd.concat([f.assign(label=label) for label, f in frames.items()], ignore_index=True)
    return frame.groupby(["label", "k"], sort=False)[list(COLUMNS)].mean().reset_index()


# the cells of embedding_summary: (column, after which task: 0, 1 or -1 for the run's last)
SUMMARY_CELLS = {"saturation after task 0": ("saturation", 0), "saturation after task 1": ("saturation", 1),
                 "saturation at the end": ("saturation", -1), "spread after task 0": ("spread", 0),
                 "spread at the end": ("spread", -1),
                 "task separability after task 1": ("task_separability", 1),
                 "task separability at the end": ("task_separability", -1)}


def mean_ci_text(mean: float, half: float, digits: int = 3) -> str:
    """"mean ± half" rounded to `digits`; the mean alone where the half-width is NaN or rounds to 0
    (one run, or no visible spread)."""
    shown = f"{mean:.{digits}f}"
    return shown if half != half or round(half, digits) == 0 else f"{shown} ± {half:.{digits}f}"


def per_run(frames: dict):
    """{label: concatenated embedding_frames} -> one row per (label, run) with SUMMARY_CELLS: the
    run's mean over tasks u <= k of the column after task k (k = -1: the run's last task)."""
    import pandas as pd

    rows = []
    for label, frame in frames.items():
        for run, group in frame.groupby("run", sort=False):
            last = int(group["k"].max())
            row = {"label": label, "run": run}
            for name, (column, k) in SUMMARY_CELLS.items():
                row[name] = float(group[group["k"] == (last if k < 0 else k)][column].mean())
            rows.append(row)
    return pd.DataFrame(rows)


def summary_table(frames: dict, digits: int = 3):
    """per_run(frames) as one row per label (the index): each SUMMARY_CELLS cell "mean ± half-width"
    of the 95 % Student-t interval over the label's runs (metrics.mean_ci; the mean alone for one
    run, or where the half-width rounds to 0), and `runs`."""
    import pandas as pd

    from dwa_core.metrics import mean_ci

    out = {}
    for label, group in per_run(frames).groupby("label", sort=False):
        row = {}
        for name in SUMMARY_CELLS:
            mean, half = mean_ci(group[name])
            row[name] = mean_ci_text(mean, half, digits)
        out[label] = {**row, "runs": len(group)}
    return pd.DataFrame.from_dict(out, orient="index").rename_axis("label")


def summary_markdown(frames: dict, digits: int = 3) -> str:
    """summary_table(frames) as a Markdown table (the README's embedding table)."""
    from dwa_core.aggregate import to_markdown

    return to_markdown(summary_table(frames, digits).reset_index())
