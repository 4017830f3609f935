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
    "03_hat_step_by_step": ("HAT step by step", "Hard attention to the task (Serra et al. 2018): a gate "
                            "a = sigmoid(s e_t) per unit and task; s is annealed from 1/s_max to s_max within "
                            "each epoch (HAT eq. 3), gradients of units used by earlier tasks are conditioned "
                            "(eq. 2) and the embedding gradients are compensated for the annealing (eq. 5).", [
        code('s_max = 400.0\nprogress = np.linspace(0, 1, 50)\ns = 1 / s_max + (s_max - 1 / s_max) * progress  '
             '# HAT eq. 3\nfig, ax = plt.subplots(figsize=(4, 2.5)); ax.plot(progress, s); '
             'ax.set_xlabel("position in epoch"); ax.set_ylabel("s"); ax.set_yscale("log")'),
        code(skip_unless('["hat"]')),
        code('''if record["available"]:
    print(approaches.get("hat").Params.__doc__)
    display(approaches.get("hat").Params())
    runs = run(["hat", "sgd"])
    for n, rs in runs.items():
        display(save(plots.plot_accuracy_matrix(rs[0]), f"03_accmatrix_{n}", rs[0].config))
    record["final_accuracy"] = {n: float(rs[0].acc_matrix()[-1].mean()) for n, rs in runs.items()}
    record["forgetting"] = {n: metrics.forgetting(rs[0].acc_matrix()) for n, rs in runs.items()}'''),
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
    "05_dwa_step_by_step": ("DWA step by step", "Dynamic Weight Allocation: a context processor maps the "
                            "input to an embedding, which produces per-weight attention masks; the loss adds "
                            "mask terms, a curriculum and anchors (seed_spec §5).", [
        code(skip_unless('["dwa"]')),
        code('''if record["available"]:
    print(approaches.get("dwa").__doc__)
    display(approaches.get("dwa").Params())
    res = run(["dwa"])["dwa"][0]
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
                                  "Where the seed's code differs from the paper, a switch selects either. "
                                  "`train.lr_schedule`: 'paper' divides the lr after `lr_patience` epochs "
                                  "without improvement and stops below lr_min; 'original-code' reproduces the "
                                  "seed's condition, which never decays (constant lr, all epochs).", [
        code('''import dataclasses, typing
from dwa_core.config import TrainConfig
rows = []
for owner, cls in [("train", TrainConfig)] + [(n, approaches.get(n).Params) for n in approaches.names()]:
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if typing.get_origin(hint) is typing.Literal:
            rows.append({"owner": owner, "field": f.name, "choices": typing.get_args(hint), "default": f.default})
record["switches"] = rows
pd.DataFrame(rows)'''),
        code('''from dataclasses import replace
epochs = {}
for schedule in ("paper", "original-code"):
    cfg = figures.profile_config(profile, "sgd", seeds[0], device, data_dir)
    cfg = replace(cfg, train=replace(cfg.train, lr_schedule=schedule, lr_patience=1))
    res = run_experiment(cfg, save=False)
    epochs[schedule] = [len(h) for h in res.history]
record["epochs_per_task"] = epochs
epochs'''),
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
