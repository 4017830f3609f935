"""Figures of the paper (docs/original-code.md#metrics-and-figures) as pure functions of Results objects.

Every function returns a matplotlib Figure and never shows or saves it; `save_figure` writes
PNG + PDF + a JSON sidecar with the exact config and command that produced the figure.

Introspection dict (Fig. 7 and the PCA): either dwa_core.introspection.introspect's
    {task index: {"name", "images": (N, C, H, W), "masks": {layer: (N, *shape)}, "emb": (N, d)}}
or {task_name: {"images", "masks", "embedding"}}; `normalise_introspection` maps both to the latter.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt  # no backend is chosen here: notebooks keep theirs, the CLI picks Agg
import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.ticker import MaxNLocator

from dwa_core import metrics, numerics
from dwa_core.aggregate import paired_references

PAPER_BENCHMARK = "mixture"
DPI = 110  # figures read on a laptop screen (inline display and saved PNGs)


def _subplots(*args, **kwargs):
    """plt.subplots at the module's screen resolution."""
    return plt.subplots(*args, dpi=DPI, **kwargs)


def integer_ticks(ax, axis: str = "x") -> None:
    """Only whole numbers on `axis` (task and batch indices are never 2.5)."""
    getattr(ax, f"{axis}axis").set_major_locator(MaxNLocator(integer=True))


def text_colour(rgb) -> str:
    """'black' on a light background, 'white' on a dark one (relative luminance, ITU-R BT.709)."""
    r, g, b = to_rgb(rgb)
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


def benchmark_label(results_or_name) -> str:
    """'mixture' for the paper's benchmark, 'split-digits (offline data)' otherwise."""
    name = results_or_name if isinstance(results_or_name, str) else results_or_name.config.get("benchmark")
    return str(name) if name == PAPER_BENCHMARK else f"{name} (offline data)"


def _approach(results) -> str:
    return str(results.config.get("approach"))


def plot_accuracy_curves(runs: dict) -> plt.Figure:
    """Paper Fig. 5: one subplot per approach; x = last learned task, one line per task starting
    when it is learned; y = test accuracy in [0, 1]. `runs`: {approach: Results}."""
    names = list(runs)
    fig, axes = _subplots(1, len(names), figsize=(3.2 * len(names), 3), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        res = runs[name]
        acc = res.acc_matrix()[: res.completed_tasks]
        for u in range(acc.shape[0]):
            ts = np.arange(u, acc.shape[0])
            ax.plot(ts + 1, acc[u:, u], marker="x", ms=4, label=res.task_names[u])
        ax.set_title(name)
        ax.set_xlabel("last learned task")
        ax.set_ylim(0, 1.02)
        ax.set_xticks(np.arange(1, res.n_tasks + 1))
    axes[0, 0].set_ylabel("test accuracy")
    axes[0, -1].legend(fontsize=6, loc="lower left")
    fig.suptitle(f"Accuracy after each learned task - {benchmark_label(runs[names[0]])}")
    fig.tight_layout()
    return fig


def plot_retention(runs: dict, random, joint) -> plt.Figure:
    """Paper Fig. 6: metrics.retention_ratio (rows 1..T-1) per approach; 1 = joint, 0 = random.
    `runs`: {approach: Results or [Results per seed]}; random/joint: one Results for every run, or
    lists matched to each run by aggregate.reference_key (its seed)."""
    fig, ax = _subplots(figsize=(5, 3.2))
    for name, res in runs.items():
        seeds = _as_list(res)
        curves = np.array([metrics.retention_ratio(r.acc_matrix(), rand, jnt)[1:]
                           for r, (rand, jnt) in zip(seeds, paired_references(seeds, random, joint))])
        _line_with_ci(ax, np.arange(2, curves.shape[1] + 2), curves, name)
    ax.axhline(1, color="grey", lw=0.5, ls="--")
    ax.axhline(0, color="grey", lw=0.5, ls="--")
    ax.set_xlabel("last learned task")
    integer_ticks(ax)
    ax.set_ylabel("retention ratio (1 = joint)")
    ax.legend(fontsize=7)
    ax.set_title(f"Forgetting ratio (Fig. 6) - {benchmark_label(_first(random))}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_forgetting_ratio(runs: dict, random, joint) -> plt.Figure:
    """HAT's rho^{<=t} (metrics.forgetting_ratio) with 95% CI over seeds, like plot_results.py.
    `runs`: {approach: [Results per seed]}; random/joint: as in plot_retention."""
    fig, ax = _subplots(figsize=(5, 3.2))
    for name, res in runs.items():
        seeds = _as_list(res)
        curves = np.array([metrics.forgetting_ratio(r.acc_matrix(), rand, jnt)
                           for r, (rand, jnt) in zip(seeds, paired_references(seeds, random, joint))])
        _line_with_ci(ax, np.arange(1, curves.shape[1] + 1), curves, name)
    ax.axhline(0, color="grey", lw=0.5, ls="--")
    ax.axhline(-1, color="grey", lw=0.5, ls="--")
    ax.set_xlabel("last learned task")
    integer_ticks(ax)
    ax.set_ylabel(r"forgetting ratio $\rho$")
    ax.legend(fontsize=7)
    ax.set_title(f"HAT forgetting ratio, 95% CI - {benchmark_label(_first(random))}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_accuracy_matrix(results) -> plt.Figure:
    """Heat map of acc[t][u] (row: trained through t, column: evaluated task u), upper triangle blank.
    Axes carry the task names; each value is written in black or white by its cell's brightness."""
    acc = results.acc_matrix()
    n = acc.shape[0]
    done = min(n, results.completed_tasks)  # rows not trained yet stay blank (live plots)
    shown = np.tril(np.ones_like(acc, dtype=bool)) & (np.arange(n)[:, None] < done)
    masked = np.where(shown, acc, np.nan)
    fig, ax = _subplots(figsize=(2.2 + 0.75 * n, 1.6 + 0.65 * n))
    im = ax.imshow(masked, vmin=0, vmax=1, cmap="viridis")
    for t in range(done):
        for u in range(t + 1):
            ax.text(u, t, f"{acc[t, u]:.2f}", ha="center", va="center", fontsize=8,
                    color=text_colour(im.cmap(im.norm(acc[t, u]))))
    names = list(results.task_names)[:n]
    ax.set_xticks(range(n), names, rotation=35, ha="right", fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("evaluated task u")
    ax.set_ylabel("trained through task t")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(f"{_approach(results)} - {benchmark_label(results)}", fontsize=9)
    fig.tight_layout()
    return fig


def mask_image(mask: np.ndarray) -> np.ndarray:
    """A 2-D picture of one sample's mask (docs/original-code.md#metrics-and-figures): conv masks (out,
    in, kh, kw) averaged
    over the kernel axes to (out, in); FC masks (out, in) as they are; a 1-D mask becomes a row."""
    m = np.asarray(mask, dtype=float)
    if m.ndim == 1:
        return m[None, :]
    return m.reshape(m.shape[0], m.shape[1], -1).mean(axis=2)


def normalise_introspection(intro: dict) -> dict:
    """{task_name: {"images", "masks", "embedding"}} from either accepted shape."""
    return {str(e.get("name", k)): {"images": e["images"], "masks": e.get("masks", {}),
                                    "embedding": e.get("embedding", e.get("emb"))} for k, e in intro.items()}


def plot_masks(intro: dict, task: str, sample: int = 0, benchmark: str = "?") -> plt.Figure:
    """Paper Fig. 7: the input image and one heat map per masked layer for one sample of `task`, on one
    colour scale with its bar: [-1, 1] (diverging) when a mask has negative entries (the tanh gate),
    else [0, 1]."""
    intro = normalise_introspection(intro)
    entry = intro[task]
    layers = list(entry["masks"])
    fig, axes = _subplots(1, len(layers) + 1, figsize=(2.4 * (len(layers) + 1), 2.4), squeeze=False)
    img = np.asarray(entry["images"][sample], dtype=float)
    img = img.transpose(1, 2, 0) if img.ndim == 3 else img
    img = (img - img.min()) / (np.ptp(img) + 1e-12)
    axes[0, 0].imshow(img.squeeze(), cmap="gray")
    axes[0, 0].set_title("input", fontsize=8)
    pictures = {name: mask_image(np.asarray(entry["masks"][name])[sample]) for name in layers}
    signed = any(p.min() < 0 for p in pictures.values())  # tanh gate: H in (-1, 1); sigmoid: (0, 1)
    shown = None
    for ax, name in zip(axes[0, 1:], layers):
        shown = ax.imshow(pictures[name], vmin=-1 if signed else 0, vmax=1,
                          cmap="RdBu_r" if signed else "magma", aspect="auto")
        ax.set_title(name, fontsize=8)
    if shown is not None:
        bar = fig.colorbar(shown, ax=axes[0, -1], fraction=0.08, pad=0.04)
        conv = any(np.asarray(entry["masks"][name]).ndim > 3 for name in layers)  # (B, out, in, kh, kw)
        bar.set_label("H (conv: mean over the kernel)" if conv else "H", fontsize=7)
        bar.ax.tick_params(labelsize=7)
    for ax in axes[0]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"DWA masks, task {task} - {benchmark_label(benchmark)}", fontsize=9)
    fig.tight_layout()
    return fig


def pca_2d(x: np.ndarray) -> np.ndarray:
    """Project rows of x on their first two principal components (SVD of the centred data)."""
    x = np.asarray(x, dtype=float)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    proj = x @ vt[:2].T
    return proj if proj.shape[1] == 2 else np.pad(proj, ((0, 0), (0, 2 - proj.shape[1])))


def plot_embedding_pca(intro: dict, benchmark: str = "?") -> plt.Figure:
    """The context embeddings of every task projected together on 2 principal components."""
    intro = normalise_introspection(intro)
    names = list(intro)
    emb = np.concatenate([np.asarray(intro[n]["embedding"], dtype=float) for n in names])
    proj = pca_2d(emb)
    fig, ax = _subplots(figsize=(4, 3.4))
    start = 0
    for n in names:
        k = len(intro[n]["embedding"])
        ax.scatter(proj[start:start + k, 0], proj[start:start + k, 1], s=6, label=n)
        start += k
    ax.legend(fontsize=6)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(f"Embedding PCA - {benchmark_label(benchmark)}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_compression(frame, title: str = "HAT compression") -> plt.Figure:
    """HAT's compression experiment (dwa_core.compression): left, the fraction of the gated weights
    still active (both units' masks > 0.5) after each epoch of the first task, one line per c; right,
    the final fraction against the final test accuracy, one point per c. `frame`: the rows of
    compression_analysis (columns c, epoch, active_weights, test_acc)."""
    fig, (left, right) = _subplots(1, 2, figsize=(8, 3.2))
    for c, rows in frame.groupby("c"):
        left.plot(rows["epoch"] + 1, rows["active_weights"], marker="o", ms=3, label=f"c = {c:g}")
        last = rows.iloc[-1]
        right.scatter(last["active_weights"], last["test_acc"], s=20)
        right.annotate(f"c = {c:g}", (last["active_weights"], last["test_acc"]), fontsize=7,
                       xytext=(3, 3), textcoords="offset points")
    left.set_xlabel("epoch")
    left.set_ylabel("active weights (fraction)")
    left.set_ylim(0, 1.02)
    left.legend(fontsize=7)
    right.set_xlim(0, 1.02)
    right.set_xlabel("active weights after the last epoch")
    right.set_ylabel("test accuracy")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


# the measures of dwa_core.diagnosis (docs/why-dwa-forgets.md) and how the figures name them
DIAGNOSIS_MEASURES = {"mask_drift": "mask drift, mean |ΔH|", "mask_cross": "masks crossing |H| = 0.5",
                      "overlap": "mask overlap with task t", "weight_change": "W change where u's masks are",
                      "effective_change": "change of W ⊙ H", "embedding_drift": "embedding drift",
                      "embedding_saturation": "saturated entries of E (|E| > 0.999)",
                      "embedding_spread": "spread of E across samples",
                      "task_separability": "task read from E (nearest centroid)"}


MARKERS = "os^Dv<>PX*"
# what makes two pairs (t, u) the same pair, as dwa_core.diagnosis.distinct_pairs has it
PAIR_KEYS = ("seed", "t", "u", "acc_before", "acc_after")
DISTINCT_MEASURES = ("mask_drift", "mask_cross", "overlap", "overlap_binary", "weight_change",
                     "weight_change_unweighted", "effective_change")


def plot_dwa_diagnosis(frame, title: str = "") -> plt.Figure:
    """Why DWA forgets: one panel per measure of `diagnosis.diagnose_run` (x) against u's accuracy
    drop acc[u][u] - acc[t][u] (y), one point per pair (t, u) of the "all"-layer rows; one colour
    per `label` when the frame has that column (several runs or ablations). Each panel's title
    gives the Spearman rank correlation over the distinct points (a run identical to an earlier one
    is drawn as rings and counted once). Measures the frame lacks (files written before the
    embedding measures) leave their panel empty."""
    rows = frame[frame["layer"] == "all"]
    groups = list(rows.groupby("label", sort=False)) if "label" in rows else [("", rows)]
    present = [c for c in (*DIAGNOSIS_MEASURES, "acc_drop") if c in rows]
    twins = _identical_groups(groups, present)
    # each distinct pair counts once in the correlations (identical runs repeat their pairs)
    distinct = rows.drop_duplicates(subset=[c for c in (*PAIR_KEYS, *DISTINCT_MEASURES) if c in rows])
    fig, axes = _subplots(3, 3, figsize=(10, 8.4), sharey=True)
    for ax, (column, name) in zip(axes.flat, DIAGNOSIS_MEASURES.items()):
        if column not in rows:
            ax.set_visible(False)
            continue
        for i, (label, group) in enumerate(groups):
            # a run identical to an earlier one would hide under it: a ring around its points instead
            nth = sum(twins.get(other) == twins.get(label) for other, _ in groups[:i])  # rings nest
            ring = {"s": 45 * (1 + nth), "facecolors": "none", "edgecolors": f"C{i % 10}", "linewidths": 1.2}
            # nearly equal runs overlap too: one marker shape per run, half transparent
            dot = {"s": 18, "color": f"C{i % 10}", "marker": MARKERS[i % len(MARKERS)], "alpha": 0.75}
            style = ring if label in twins else dot
            text = f"{label} (identical to {twins[label]})" if label in twins else label
            ax.scatter(group[column], group["acc_drop"], label=text or None, **style)
        rho = distinct[column].corr(distinct["acc_drop"], method="spearman")
        ax.set_title(f"{name}\nSpearman ρ = {rho:.2f}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.axhline(0, color="grey", lw=0.5, ls="--")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy drop of u", fontsize=8)
    if len(groups) > 1:
        fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=7,
                   frameon=False)
    fig.suptitle(title or "Why DWA forgets: each pair (t, u), u < t", fontsize=9)
    fig.tight_layout(rect=(0, 0.08 if len(groups) > 1 else 0, 1, 1))
    return fig


def _identical_groups(groups, columns) -> dict:
    """{label: the earlier label} for each (label, frame) group whose `columns` equal an earlier
    group's value for value (the same points, which would be drawn on top of each other)."""
    twins = {}
    for i, (label, group) in enumerate(groups):
        values = group[columns].to_numpy(dtype=float)
        for other, earlier in groups[:i]:
            if other not in twins and earlier[columns].to_numpy(dtype=float).shape == values.shape \
                    and np.array_equal(earlier[columns].to_numpy(dtype=float), values, equal_nan=True):
                twins[label] = other
                break
    return twins


ABLATION_COLUMNS = {"final_accuracy": "final accuracy", "learning_accuracy": "accuracy when learned",
                    "forgetting": "forgetting (-BWT)", **DIAGNOSIS_MEASURES}
EMBEDDING_COLUMNS = {"saturation": "saturated entries of E (|E| > 0.999)",
                     "spread": "spread of E across samples",
                     "task_separability": "task read from E (chance 1/(k+1))"}


def plot_ablation_bars(summary, reference: str = "default") -> plt.Figure:
    """One panel per column of `diagnosis.summarise` (accuracy at the end and when learned,
    forgetting, the measures) that the summary has, one bar per ablation (its rows), with the 95 %
    interval over its runs as an error bar where the summary has `<column>_ci`
    (summarise(intervals=True)); a dashed line marks the `reference` row (default: "default", else
    the first) in every panel."""
    labels = [str(k) for k in summary.index]
    ref = labels.index(reference) if reference in labels else 0
    columns = {c: name for c, name in ABLATION_COLUMNS.items() if c in summary}
    rows = -(-len(columns) // 4)
    fig, axes = _subplots(rows, 4, figsize=(12, 0.6 + rows * (0.8 + 0.3 * len(labels))), sharey=True,
                          squeeze=False)
    y = np.arange(len(labels))
    for ax in axes.flat[len(columns):]:
        ax.set_visible(False)
    for ax, (column, name) in zip(axes.flat, columns.items()):
        values = summary[column].to_numpy(dtype=float)
        err = summary[f"{column}_ci"].to_numpy(dtype=float) if f"{column}_ci" in summary else None
        ax.barh(y, values, xerr=err, color=["C1" if i == ref else "C0" for i in y], error_kw={"lw": 0.8})
        ax.axvline(values[ref], color="grey", lw=0.8, ls="--")
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_yticks(y, labels)
    axes[0, 0].invert_yaxis()  # the first ablation on top
    fig.suptitle("DWA ablations: accuracy, forgetting, and each measure's mean over the pairs (t, u)"
                 + (f"; bars: 95 % interval over {int(summary['runs'].max())} seeds" if "runs" in summary
                    and summary["runs"].max() > 1 else ""), fontsize=9)
    fig.tight_layout()
    return fig


def plot_embedding_by_task(table, title: str = "") -> plt.Figure:
    """DWA's embedding after each task k: one panel per EMBEDDING_COLUMNS column of
    `diagnosis.embedding.by_task` (x: k, the same task axis in every panel; y: the mean over the
    label's runs and tasks u <= k), one line per label (ablation). The two fractions (saturation,
    separability) are drawn on [0, 1]. The separability is defined from k = 1 (two tasks to tell
    apart); its chance, 1/(k+1), is a grey dash at each k, joined by a dashed line."""
    labels = list(dict.fromkeys(table["label"]))
    ks = np.array(sorted(set(table["k"])))
    fig, axes = _subplots(1, 3, figsize=(12, 3.6))
    for ax, (column, name) in zip(axes, EMBEDDING_COLUMNS.items()):
        for i, label in enumerate(labels):
            rows = table[table["label"] == label]
            ax.plot(rows["k"], rows[column], marker="o", ms=3, color=f"C{i % 10}", label=label,
                    ls="-" if i < 10 else "--")
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("after task k", fontsize=8)
        ax.set_xlim(ks.min() - 0.3, ks.max() + 0.3)  # a run of two tasks has one separability point
        if column != "spread":
            ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=7)
        integer_ticks(ax)
    later = ks[ks > 0]
    axes[2].plot(later, 1 / (later + 1), color="grey", lw=0.8, ls="--", marker="_", ms=14, label="chance")
    fig.suptitle(title or "DWA's task embedding after each task", fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.72, 1))
    fig.legend(*axes[2].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(0.725, 0.5),
               fontsize=7, frameon=False)  # beside the panels, not over the last one
    return fig


def save_figure(fig: plt.Figure, path_stem, config, command: str, dpi: int | None = None) -> list[Path]:
    """Write path_stem.png, path_stem.pdf and path_stem.json (exact config + command, and the
    numerics of the code that drew it: dwa_core.numerics.identity())."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf"), stem.with_suffix(".json")]
    fig.savefig(paths[0], dpi=dpi or fig.dpi)
    fig.savefig(paths[1])
    paths[2].write_text(json.dumps({"config": config, "command": command,
                                     "numerics": numerics.identity()}, indent=1, default=str))
    plt.close(fig)
    return paths


def _as_list(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _first(x):
    return _as_list(x)[0]


def _line_with_ci(ax, xs, curves: np.ndarray, label: str) -> None:
    stats = [metrics.mean_ci(curves[:, i]) for i in range(curves.shape[1])]
    mean = np.array([s[0] for s in stats])
    half = np.array([s[1] for s in stats])
    ax.plot(xs, mean, marker="o", ms=3, label=label)
    ax.fill_between(xs, mean - half, mean + half, alpha=0.2)
