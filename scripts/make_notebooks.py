# ruff: noqa: E501  (the long strings are notebook source lines)
"""Write notebooks/NN_topic.ipynb (no outputs) with nbformat: `python scripts/make_notebooks.py`.

Every notebook: a first code cell tagged `parameters` (papermill), no training logic (it calls
dwa_core), figures saved with JSON sidecars, key metrics written to `metrics_path`."""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

ROOT = Path(__file__).resolve().parents[1]

PARAMS = '''profile = "smoke"  # "smoke": split-digits (offline), seconds; "paper": the paper's settings on mixture
seeds = [0]
device = "cpu"
data_dir = None
results_dir = None  # cache runs here (resumed / replayed); None: do not save runs
figures_dir = "../figures/notebooks"
metrics_path = "metrics.json"'''

SETUP = '''import json, sys, pathlib
try:
    import dwa_core
except ImportError:  # running from notebooks/ without an installed package
    sys.path.insert(0, str(pathlib.Path.cwd().parent))
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from dwa_core import approaches, metrics, plots, figures
from dwa_core.experiment import run_experiment
from io import BytesIO
def _png(fig):  # dwa_core.plots selects the Agg backend: figures are shown as PNG when displayed
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return buf.getvalue()
get_ipython().display_formatter.formatters["image/png"].for_type(plt.Figure, _png)
figures_dir = pathlib.Path(figures_dir)
command = f"papermill -p profile {profile} (notebook {NAME!r})"
record = {"profile": profile, "seeds": list(seeds)}
def save(fig, stem, cfg):
    plots.save_figure(fig, figures_dir / f"{stem}_{profile}", cfg, command)
    return fig
def run(names, **kw):
    return figures.run_suite(profile, names, seeds, results_dir, device, data_dir, **kw)'''

FINISH = '''pathlib.Path(metrics_path).parent.mkdir(parents=True, exist_ok=True)
pathlib.Path(metrics_path).write_text(json.dumps(record, indent=1, default=float))
record'''


def md(text):
    return nbf.v4.new_markdown_cell(text.strip())


def code(text):
    return nbf.v4.new_code_cell(text.strip())


def notebook(name: str, title: str, intro: str, cells: list) -> nbf.NotebookNode:
    nb = nbf.v4.new_notebook()
    params = code(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [md(f"# {title}\n\n{intro}"), params, code(f"NAME = {name!r}\n" + SETUP), *cells,
                md("Key metrics of this notebook, written to `metrics_path`:"), code(FINISH)]
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating gives identical files
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def skip_unless(names: str) -> str:
    return f'''missing = [n for n in {names} if n not in approaches.names()]
record["available"] = not missing
if missing:
    print("not registered yet:", missing, "- the cells below are skipped")'''


NOTEBOOKS = {
    "01_quickstart": ("Quickstart", "Train one approach on a small benchmark and read its accuracy matrix. "
                      "`acc[t][u]` is the test accuracy on task u after training tasks 0..t.", [
        code('res = run(["sgd"])["sgd"][0]\npd.DataFrame(res.acc_matrix(), index=res.task_names, '
             'columns=res.task_names).round(3)'),
        md("The heat map shows the lower triangle only: task u is evaluated once it has been learned."),
        code('save(plots.plot_accuracy_matrix(res), "01_accmatrix", res.config)'),
        code('record["final_accuracy"] = float(res.acc_matrix()[-1].mean())\n'
             'record["acc_matrix"] = res.acc_matrix().tolist()'),
    ]),
    "02_catastrophic_forgetting": ("Catastrophic forgetting: SGD vs joint vs random",
                                   "SGD fine-tunes the shared network on each task in turn; *joint* trains on all "
                                   "tasks seen so far (upper bound); *random* is an untrained network (chance "
                                   "level). Every metric of `dwa_core.metrics` is computed below.", [
        code('runs = run(["sgd", "joint", "random"])\nrand, joint = runs["random"], runs["joint"]'),
        code('for name, rs in runs.items():\n    display(plots.plot_accuracy_matrix(rs[0]))'),
        md("**Metrics.** average accuracy (last row mean), backward transfer, forgetting (max drop), HAT's "
           "forgetting ratio rho (-1 random, 0 joint, current task included), the paper's Fig. 6 retention "
           "ratio (1 joint, 0 random, current task excluded) and the notebook's '% forgotten'."),
        code('''rows = {}
for name, rs in runs.items():
    a = rs[0].acc_matrix()
    rows[name] = {"average_accuracy": metrics.average_accuracy(a), "backward_transfer": metrics.backward_transfer(a),
                  "forgetting": metrics.forgetting(a),
                  "rho_mean": float(metrics.forgetting_ratio(a, rand[0].acc_matrix(), joint[0].acc_matrix()).mean()),
                  "percent_forgotten": metrics.percent_forgotten(a, rand[0].acc_matrix(), joint[0].acc_matrix()),
                  "simple_retention": float(np.nanmean(metrics.simple_retention_ratio(a)))}
record["metrics"] = rows
record["acc_matrix"] = {n: rs[0].acc_matrix().tolist() for n, rs in runs.items()}
pd.DataFrame(rows).T.round(3)'''),
        code('save(plots.plot_accuracy_curves({n: rs[0] for n, rs in runs.items()}), "02_curves", '
             'runs["sgd"][0].config)'),
    ]),
    "03_hat_step_by_step": ("HAT step by step", "Hard attention to the task (Serra et al. 2018; seed_spec §6.1), "
                            "opened up on a small run. Every gated layer has a task embedding e_t; its units are "
                            "multiplied by the gate a = sigmoid(s e_t) (Eq. 1). s is annealed from 1/s_max to "
                            "s_max within every epoch (Eq. 3). After a task, the cumulative mask a^{<=t} = "
                            "max(a^{<t}, a^t) conditions the gradients of later tasks (Eq. 2), the embedding "
                            "gradients are compensated for the annealing (Eq. 4) and the loss adds c R, a "
                            "penalty on units not used by earlier tasks (Eq. 5). The maths is "
                            "`dwa_core/functional/hat.py`; the steps below call `dwa_core.walkthrough`.", [
        code('''from dwa_core import walkthrough
cfg = figures.profile_config(profile, "hat", seeds[0], device, data_dir)
approach, bench = walkthrough.prepare(cfg)
hp = approach.params
print(approach.model)
hp'''),
        md("**1. The gate.** a = sigmoid(s e): at small s every unit is half open and the gate is smooth "
           "(gradients reach e); at s = s_max it is a step, nearly binary."),
        code('''e = np.linspace(-0.5, 0.5, 201)
s_values = [1.0, 10.0, 50.0, hp.s_max]
table = walkthrough.gate_table(e, s_values)
fig, ax = plt.subplots(figsize=(5, 3), layout="constrained")
for s, row in zip(s_values, table):
    ax.plot(e, row, label=f"s = {s:g}")
ax.set_xlabel("embedding e"); ax.set_ylabel("a = sigmoid(s e)"); ax.legend()
display(save(fig, "03_gate", {"s": s_values}))
record["gate_at_e_0.05"] = {f"{s:g}": float(walkthrough.gate_table([0.05], [s])[0, 0]) for s in s_values}
record["gate_at_e_0.05"]'''),
        md("**2. Annealing of s within an epoch** (Eq. 3): batch b of n uses progress b/n; evaluation uses s_max."),
        code('''n_batches = -(-len(bench.tasks[0].train) // cfg.train.batch_size)
trace = walkthrough.anneal_trace(hp.s_max, n_batches)
fig, ax = plt.subplots(figsize=(5, 2.5), layout="constrained")
ax.step(range(n_batches), trace, where="post", marker="o"); ax.set_yscale("log")
ax.set_xlabel(f"batch of the epoch ({n_batches} batches)"); ax.set_ylabel("s")
display(save(fig, "03_anneal", cfg))
record["anneal"] = {"n_batches": n_batches, "s_first": float(trace[0]), "s_last": float(trace[-1])}
record["anneal"]'''),
        md("**3. Embedding-gradient compensation** (Eq. 4, as the seed code): the gradient of e is multiplied by "
           "(s_max/s)(cosh(clamp(s e, ±thres_cosh)) + 1)/(cosh(e) + 1). At s = 1 the factor is s_max for every e; "
           "at large s it grows like cosh(s e) until the clamp stops it (|s e| > thres_cosh): the flat tops."),
        code('''e = np.linspace(-1, 1, 401)
fig, ax = plt.subplots(figsize=(5, 3), layout="constrained")
for s in (1.0, 10.0, 100.0, hp.s_max):
    ax.plot(e, walkthrough.compensation_factor(e, s, hp.s_max, hp.thres_cosh), label=f"s = {s:g}")
ax.plot(e, walkthrough.compensation_factor(e, hp.s_max, hp.s_max, 1e3), "k:", label="s = s_max, no clamp")
ax.set_yscale("log"); ax.set_xlabel("e"); ax.set_ylabel("gradient factor"); ax.legend(fontsize=7)
display(save(fig, "03_compensation", {"s_max": hp.s_max, "thres_cosh": hp.thres_cosh}))
record["compensation"] = {f"s={s:g},e={x:g}": float(walkthrough.compensation_factor([x], s, hp.s_max, hp.thres_cosh)[0])
                          for s in (1.0, hp.s_max) for x in (0.0, 0.5)}
record["compensation"]'''),
        md("**4. A small run, task by task.** `walkthrough.fit_hat` trains every task with the approach's own "
           "loop and records, after task t, its masks at s_max, the cumulative mask and R; before task t >= 1 "
           "it sends one real training batch of task t through the step up to the gradient conditioning."),
        code('''records = walkthrough.fit_hat(approach, bench, batch=cfg.train.batch_size)
layers = list(records[0]["masks"])
usage = pd.DataFrame({r["task"]: {**{f"{k} used": r["used"][k] for k in layers},
                                 **{f"{k} cumulative": r["cumulative_used"][k] for k in layers},
                                 "R": r["regularizer"]} for r in records}).T
record["usage"] = {r["task"]: {"used": r["used"], "cumulative_used": r["cumulative_used"]} for r in records}
record["regularizer"] = [r["regularizer"] for r in records]
usage.round(3)'''),
        md("Masks per task (rows) and unit (columns), at s_max: each task claims a few units; the last row of "
           "each panel is the cumulative mask after the last task, the units no later task may change."),
        code('''fig, axes = plt.subplots(1, len(layers), figsize=(5 * len(layers), 2.6), squeeze=False, layout="constrained")
for ax, k in zip(axes[0], layers):
    rows = [r["masks"][k] for r in records] + [records[-1]["cumulative"][k]]
    im = ax.imshow(np.stack(rows), aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(rows)), [r["task"] for r in records] + ["cumulative"], fontsize=7)
    ax.set_xlabel("unit"); ax.set_title(f"{k} mask a^t")
fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
display(save(fig, "03_masks", cfg))'''),
        md("**5. Gradient conditioning on a real batch** (Eq. 2): before task t, the gradient of weight (i, j) "
           "is scaled by 1 - min(a_post_i, a_pre_j) of the cumulative mask. `blocked`: fraction of the batch's "
           "non-zero weight-gradient entries that conditioning stops (keeps <= 1 %); `blocked_all`: fraction of "
           "all weight entries whose multiplier is <= 1 %, which the cumulative unit masks predict exactly "
           "(`predicted`). It grows with every task: the network fills up."),
        code('''cond = pd.DataFrame({r["task"]: {"blocked (batch)": r["conditioning"]["blocked"],
                                 "blocked_all": r["conditioning"]["blocked_all"],
                                 "predicted": r["predicted_blocked"],
                                 **{f"{k} kept norm": v["kept_norm"] for k, v in r["conditioning"]["layers"].items()}}
                     for r in records[1:]}).T
record["conditioning"] = cond.to_dict(orient="index")
record["blocked_last"] = float(records[-1]["conditioning"]["blocked"])
cond.round(3)'''),
        md("**6. The mask regulariser** R (Eq. 5) of each task's final masks against a^{<t}: the share of "
           "free units a task claims (task 0: the mean of its masks). The loss adds c R with c = "
           "`approach_params.c`."),
        code('''fig, ax = plt.subplots(figsize=(5, 2.5), layout="constrained")
ax.bar([r["task"] for r in records], record["regularizer"]); ax.set_ylabel("R"); ax.tick_params(axis="x", labelsize=7)
display(save(fig, "03_regularizer", cfg))'''),
        md("**7. Forgetting.** The accuracy matrix of this run, and HAT against SGD on the same smoke settings "
           "(`run_suite`). HAT's masks keep earlier tasks intact; SGD's shared weights drift."),
        code('''acc = np.full((len(records), len(records)), np.nan)
for t, r in enumerate(records):
    acc[t, : t + 1] = r["acc"]
record["walkthrough_acc"] = acc.tolist()
runs = run(["hat", "sgd"])
for n, rs in runs.items():
    display(save(plots.plot_accuracy_matrix(rs[0]), f"03_accmatrix_{n}", rs[0].config))
record["final_accuracy"] = {n: float(rs[0].acc_matrix()[-1].mean()) for n, rs in runs.items()}
record["forgetting"] = {n: metrics.forgetting(rs[0].acc_matrix()) for n, rs in runs.items()}
record["forgetting"]'''),
    ]),
    "04_regularisers": ("Regularisers: EWC, LwF, LFL, IMM", "Approaches that keep one shared network and "
                        "add a penalty (EWC: Fisher-weighted distance to old weights; LwF: distillation of "
                        "old heads; LFL: distance of features; IMM: merge of per-task models).", [
        code('names = figures.available(["ewc", "lwf", "lfl", "imm-mean", "imm-mode", "sgd"])\n'
             'runs = run(names + ["random", "joint"])\nrand, joint = runs.pop("random"), runs.pop("joint")'),
        code('record["summary"] = figures.summary(runs, rand, joint)\n'
             'pd.DataFrame(record["summary"]).T.drop(columns="acc_matrix")'),
        code('save(plots.plot_retention(runs, rand, joint), "04_retention", runs["sgd"][0].config)'),
    ]),
    "05_dwa_step_by_step": ("DWA step by step", "Dynamic Weight Allocation (paper §3-4; seed_spec §5), opened up. "
                            "A context processor maps each input to an embedding E; mask generators turn E into "
                            "one mask H_j per masked layer, and layer j uses W_j ⊙ H_j for that sample. The loss "
                            "(Eq. 7) adds to CE a triplet loss on E (anchors P, N), a plasticity loss (Fisher-"
                            "weighted masks) and a sparsity regulariser, weighted per sample by the curriculum's "
                            "complexity ζ. The steps call `dwa_core.walkthrough`.", [
        code('''from dwa_core import walkthrough
from dwa_core.anchors import anchor_rows
from dwa_core.curriculum import complexity
cfg = figures.profile_config(profile, "dwa", seeds[0], device, data_dir)
approach, bench = walkthrough.prepare(cfg)
p = approach.params
print(approach.model)
p'''),
        md("**1. Context processor -> embedding.** Eight test images of the first task and their embeddings "
           "E (one row each; the gate bounds them to [-1, 1])."),
        code('''task0, task1 = bench.tasks[0], bench.tasks[1]
x = task0.test.x[:8]
seen = walkthrough.dwa_inspect(approach, x, 0)
fig, axes = plt.subplots(1, 2, figsize=(10, 2.6), gridspec_kw={"width_ratios": [1, 2]}, layout="constrained")
axes[0].imshow(np.concatenate(list(x[:, 0].cpu().numpy()), axis=1), cmap="gray"); axes[0].axis("off")
im = axes[1].imshow(seen["embedding"], aspect="auto", cmap="coolwarm", vmin=-1, vmax=1)
axes[1].set_xlabel("embedding dimension"); axes[1].set_ylabel("sample"); fig.colorbar(im, ax=axes[1])
display(save(fig, "05_embedding", cfg))
record["embedding_shape"] = list(seen["embedding"].shape)'''),
        md("**2. The masks per layer**: one per sample, shaped like the layer's weight, and their values."),
        code('''masks = seen["masks"]
record["mask_shapes"] = {k: list(v.shape) for k, v in masks.items()}
display(pd.DataFrame({k: {"shape (B, out, in)": v.shape, "mean |H|": float(np.abs(v).mean()),
                          "fraction |H| > 0.5": float((np.abs(v) > 0.5).mean())} for k, v in masks.items()}).T)
fig, axes = plt.subplots(1, len(masks), figsize=(4 * len(masks), 2.5), squeeze=False, layout="constrained")
for ax, (k, v) in zip(axes[0], masks.items()):
    ax.hist(v.ravel(), bins=50); ax.set_title(k); ax.set_xlabel("H")
display(save(fig, "05_mask_histograms", cfg))'''),
        md("**3. The curriculum.** ζ: the normalised mean squared local entropy of each image (`curriculum.complexity`); "
           "an epoch trains on the samples with ζ <= θ_e, θ growing by the linear, exp or log schedule."),
        code('''sample = task1.train.x[:12]
zeta = complexity(sample).cpu().numpy()
order = np.argsort(zeta)
fig, axes = plt.subplots(1, len(order), figsize=(1.2 * len(order), 1.6))
for ax, i in zip(axes, order):
    ax.imshow(sample[i, 0].cpu().numpy(), cmap="gray"); ax.set_title(f"{zeta[i]:.2f}", fontsize=8); ax.axis("off")
display(save(fig, "05_complexity", cfg))
sched = walkthrough.schedule_table(p.curriculum.epochs if p.curriculum else 10, p.curriculum.start if p.curriculum else 0.2)
fig, ax = plt.subplots(figsize=(4.5, 2.6), layout="constrained")
for kind, theta in sched.items():
    ax.plot(theta, label=kind)
ax.set_xlabel("epoch"); ax.set_ylabel("θ"); ax.legend()
display(save(fig, "05_schedules", {"schedules": sched}))
record["zeta_sample"] = zeta.tolist()
record["schedules"] = sched'''),
        md("**4. Task 0, then the anchors of task 1.** Task 0 trains with CE + λ3 R; after it DWA stores its "
           "positive anchor and the Fisher of the masked weights. Before each epoch of task 1 it searches the "
           "anchors on the n lowest-ζ samples: P, the mean embedding; N, of K random unit vectors orthogonal to "
           "P, the one that hurts head t most when it replaces every embedding; N_T, the most harmful "
           "stored anchor of an earlier task."),
        code('''record["acc_task0"] = walkthrough.fit_tasks(approach, bench, 1)[0]
rows, anchors = walkthrough.start_task(approach, task1, 1)  # rows: the curriculum's, epoch 0
anchor_set = anchor_rows(approach.zeta(task1.train.x), p.anchor_samples, p.anchor_threshold)
xa, ya = task1.train.x[anchor_set], task1.train.y[anchor_set]
record["anchors"] = walkthrough.anchor_summary(approach, xa, ya, 1, anchors)
record["curriculum_rows_epoch0"] = [len(rows), len(task1.train)]
pd.Series(record["anchors"]).round(4)'''),
        md("**5. Each loss term on one batch of task 1** (Eq. 7), as `DWA.loss` forms it; `approach_loss` is "
           "the approach's own value on the same outputs."),
        code('''terms = walkthrough.dwa_loss_terms(approach, task1.train, rows[: cfg.train.batch_size], 1)
record["loss_terms"] = terms
weights = {"ce": 1.0, "embedding": p.lamb_triplet, "plasticity": p.lamb_plasticity, "sparsity": p.lamb_sparsity}
pd.DataFrame({k: {"value": terms[k], "λ": w, "σ λ value": terms["sigma"] * w * terms[k] if k != "ce" else terms[k]}
              for k, w in weights.items()}).T'''),
        md("**6. A short training run** on every task, with the same settings (`run_suite`)."),
        code('''res = run(["dwa"])["dwa"][0]
display(save(plots.plot_accuracy_matrix(res), "05_accmatrix_dwa", res.config))
record["final_accuracy"] = float(res.acc_matrix()[-1].mean())
record["history_keys"] = sorted(res.history[0][0])'''),
    ]),
    "06_paper_fig5_fig6": ("Paper Fig. 5 and Fig. 6", "Accuracy after each learned task (Fig. 5) and the "
                           "forgetting ratio (Fig. 6) for DWA, EWC, SGD and HAT (those registered), with "
                           "random and joint as references. In the smoke profile the benchmark is "
                           "split-digits (offline data), not the paper's mixture.", [
        code('record["summary"] = figures.make_figures(profile, figures_dir, results_dir, command, seeds, '
             'device, data_dir)\npd.DataFrame(record["summary"]).T.drop(columns="acc_matrix")'),
        code('from IPython.display import Image\nfor stem in ("fig5_accuracy", "fig6_retention", "hat_rho"):\n'
             '    display(Image(str(figures_dir / f"{stem}_{profile}.png")))'),
    ]),
    "07_paper_fig7_masks_pca": ("Paper Fig. 7: DWA attention masks and embedding PCA",
                                "Input image and one heat map per masked layer (conv masks averaged over the "
                                "kernel axes), then the context embeddings of every task on 2 principal "
                                "components.", [
        code(skip_unless('["dwa"]')),
        code('''if record["available"]:
    intro, bench_name = figures.dwa_introspection(profile, seeds[0], device, data_dir)
    names = list(plots.normalise_introspection(intro))
    for task in names[:2]:
        display(save(plots.plot_masks(intro, task, benchmark=bench_name), f"07_masks_{task}", {"profile": profile}))
    display(save(plots.plot_embedding_pca(intro, benchmark=bench_name), "07_pca", {"profile": profile}))
    record["tasks"] = names'''),
    ]),
    "08_hat_compression": ("HAT compression", "The fraction of units HAT's masks leave in use after each "
                           "task (the compression experiment of seed_spec §10.4).", [
        code(skip_unless('["hat"]')),
        code('''if record["available"]:
    from dwa_core.compression import compression_analysis
    frame = compression_analysis(figures.profile_config(profile, "hat", seeds[0], device, data_dir), [0.1, 2.0],
                                 keep_masks=False)
    last = frame.groupby("c").last()[["active_units", "active_weights", "test_acc"]]
    record["compression"] = {str(c): row.to_dict() for c, row in last.iterrows()}
    display(last)'''),
    ]),
    "09_related_work_table": ("Related work table", "Every registered approach, with HAT's forgetting ratio "
                              "rho (mean over tasks) and its 95% Student-t CI over seeds.", [
        code('names = [n for n in approaches.names() if n not in ("random", "joint")]\n'
             'runs = run(names + ["random", "joint"])\nrand, joint = runs.pop("random"), runs.pop("joint")\n'
             'record["summary"] = figures.summary(runs, rand, joint)'),
        code('table = pd.DataFrame(record["summary"]).T.drop(columns="acc_matrix")\n'
             'table.sort_values("rho_mean", ascending=False).round(3)'),
        code('save(plots.plot_forgetting_ratio(runs, rand, joint), "09_rho", {"approaches": names, "profile": '
             'profile})'),
    ]),
    "10_paper_vs_original_code": ("Paper vs original code: the fidelity switches",
                                  "Where the seed's code differs from the papers (or has a bug), one named switch "
                                  "selects either behaviour; `dwa_core.fidelity.SWITCHES` lists them all. Below: "
                                  "the catalogue, the lr protocol switch on SGD, then each of DWA's switches "
                                  "flipped alone to the original code's value on the same small run, and all of "
                                  "them at once (the `original-code` preset's switches).", [
        code('''from dwa_core import fidelity
record["switches"] = fidelity.table()
pd.DataFrame(record["switches"])'''),
        md("`train.lr_schedule`: 'paper' divides the lr after `lr_patience` epochs without improvement and "
           "stops below lr_min; 'original-code' reproduces the seed's condition, which never fires (constant lr, "
           "all epochs). Epochs trained per task:"),
        code('''from dataclasses import replace
epochs = {}
for schedule in ("paper", "original-code"):
    cfg = figures.profile_config(profile, "sgd", seeds[0], device, data_dir)
    cfg = replace(cfg, train=replace(cfg.train, lr_schedule=schedule, lr_patience=1))
    res = run_experiment(cfg, save=False)
    epochs[schedule] = [len(h) for h in res.history]
record["epochs_per_task"] = epochs
epochs'''),
        md("DWA's switches, one at a time, then all together (final average accuracy and forgetting; "
           "one seed of the profile, so differences of a few points are noise)."),
        code('''base = figures.profile_config(profile, "dwa", seeds[0], device, data_dir)
variants = {"default": base}
for switch in fidelity.of("dwa"):
    if switch.owner != "train":
        variants[switch.name] = fidelity.flip(base, switch)
all_original = base
for switch in fidelity.of("dwa"):
    if switch.owner != "train":
        all_original = fidelity.flip(all_original, switch)
variants["all of the above"] = all_original
rows = {}
for name, cfg in variants.items():
    a = run_experiment(cfg, save=False).acc_matrix()
    rows[name] = {"final_accuracy": metrics.average_accuracy(a), "forgetting": metrics.forgetting(a),
                  "finite": bool(np.isfinite(a).all())}
record["dwa_switches"] = rows
pd.DataFrame(rows).T.round(3)'''),
    ]),
    "11_explorer": ("Explorer", "Pick a benchmark, an approach and its hyper-parameters, then Run: it trains "
                    "with a live progress bar, or replays a cached run from `results_dir`. Under papermill "
                    "(`train=False`) it only renders.", [
        code('train = False  # set True to train from the Run button\nfrom dwa_core import widgets\n'
             'ex = widgets.Explorer(train=train, results_dir=results_dir)\nex.widget'),
        code('ex.run()\nrecord["status"] = ex.status.value\nrecord["n_controls"] = len(ex.params)'),
    ]),
}


def main() -> None:
    out = ROOT / "notebooks"
    out.mkdir(exist_ok=True)
    for name, (title, intro, cells) in NOTEBOOKS.items():
        nbf.write(notebook(name, title, intro, cells), out / f"{name}.ipynb")
    print(f"wrote {len(NOTEBOOKS)} notebooks to {out}")


if __name__ == "__main__":
    main()
