"""Regenerate every committed figure: `python -m dwa_core.figures --profile smoke|paper` (the
`figures` command of cli.py; the profiles are in profiles.py).

smoke: split-digits (offline data), 100 samples per class, 2 seeds, small networks trained long
enough at a constant lr to forget (SGD clearly forgets, HAT does not; a few minutes on 2 CPU cores).
paper: the paper's settings on `mixture` (paper §4.1), 10 seeds.
The notebooks call the same functions (`profile_config`, `run_suite`, `make_figures`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dwa_core import aggregate, metrics, plots
from dwa_core.experiment import run_experiment
from dwa_core.profiles import PAPER_APPROACHES, PROFILES, available, profile_config  # noqa: F401 (API)

COMMITTED_DIR = Path(__file__).resolve().parents[2] / "figures"  # the repository's committed figures


def run_suite(profile: str, names, seeds=None, results_dir=None, device: str = "cpu", data_dir=None,
              params: dict | None = None) -> dict:
    """{approach: [Results per seed]}; with results_dir, runs are cached there and resumed."""
    seeds = PROFILES[profile]["seeds"] if seeds is None else list(seeds)
    params = params or {}
    out = {}
    for name in names:
        out[name] = []
        for seed in seeds:
            cfg = profile_config(profile, name, seed, device, data_dir, str(results_dir or "results"),
                                 **params.get(name, {}))
            out[name].append(run_experiment(cfg, save=results_dir is not None))
    return out


def dwa_introspection(profile: str, seed: int = 0, device: str = "cpu", data_dir=None,
                      n_per_task: int = 10) -> tuple[dict, str]:
    """Train DWA on `profile` (as run_experiment does) and return (introspect(...), benchmark name)."""
    from dwa_core import data
    from dwa_core.experiment import build_approach, resolve_device, validate
    from dwa_core.introspection import introspect
    from dwa_core.loop import empty_results, train_tasks

    cfg = profile_config(profile, "dwa", seed, device, data_dir)
    dev = resolve_device(cfg.device)
    bench = data.load_benchmark(cfg, dev)
    approach = build_approach(cfg, validate(cfg), bench, dev)
    train_tasks(approach, bench.tasks, empty_results(bench.tasks, cfg.to_dict(), str(dev)))
    return introspect(approach, bench, n_per_task=n_per_task, seed=seed), cfg.benchmark


def fig7_from_run(run_dir, out_dir="figures", command: str = "", n_per_task: int = 20,
                  sample: int = 0) -> list[Path]:
    """Paper Fig. 7 from a finished DWA run made with task_snapshots=True (e.g. a mixture-offline
    AlexNet run of compare-mixture-offline): the network after its last task, one test sample's
    masks per task (fig7_masks_<benchmark>_<task>) and the embedding E of `n_per_task` test samples
    of every task on two principal components (fig7_embedding_pca_<benchmark>). Each figure's sidecar
    also records every task's mask statistics per layer (mean, min, max of H over its `n_per_task`
    samples), so "the masks differ between tasks" can be read as numbers. Nothing is trained;
    returns the PNG paths. DiagnosisError for a run without snapshots or not DWA's."""
    import torch

    from dwa_core import diagnosis
    from dwa_core.introspection import introspect

    results, bench, model = diagnosis.rebuild_run(Path(run_dir), torch.device("cpu"), None)
    model.load_state_dict(diagnosis.load_snapshots(run_dir)[-1])
    intro = introspect(model, bench, n_per_task=n_per_task, seed=results.config["seed"])
    stats = {entry["name"]: {layer: [round(float(f(np.asarray(h))), 4) for f in (np.mean, np.min, np.max)]
                             for layer, h in entry["masks"].items()} for entry in intro.values()}
    cfg = {"run": Path(run_dir).name, "config": results.config, "n_per_task": n_per_task, "sample": sample,
           "mask_mean_min_max": stats}  # per task and layer, over its n_per_task test samples
    written = []
    for entry in intro.values():
        stem = Path(out_dir) / f"fig7_masks_{bench.name}_{entry['name']}"
        written += plots.save_figure(plots.plot_masks(intro, entry["name"], sample, bench.name), stem, cfg,
                                     command)[:1]
    written += plots.save_figure(plots.plot_embedding_pca(intro, bench.name),
                                 Path(out_dir) / f"fig7_embedding_pca_{bench.name}", cfg, command)[:1]
    return written


def summary(runs: dict, random, joint) -> dict:
    """The summary numbers per approach (docs/original-code.md#figures): final accuracy, % forgotten
    and the final matrix of seed 0, plus HAT's rho (mean over t) with its 95% CI over seeds. Each run
    is measured against the random/joint runs of its own seed (aggregate.paired_references)."""
    out = {}
    for name, seeds in runs.items():
        pairs = aggregate.paired_references(seeds, random, joint)
        rhos = [metrics.forgetting_ratio(r.acc_matrix(), *pair).mean() for r, pair in zip(seeds, pairs)]
        rho, ci = metrics.mean_ci(rhos)
        acc = seeds[0].acc_matrix()
        out[name] = {"final_accuracy": float(acc[-1].mean()),
                     "percent_forgotten": metrics.percent_forgotten(acc, *pairs[0]),
                     "backward_transfer": metrics.backward_transfer(acc),
                     "rho_mean": rho, "rho_ci95": ci, "acc_matrix": acc.tolist()}
    return out


def make_figures(profile: str, out_dir="figures", results_dir=None, command: str = "", seeds=None,
                 device: str = "cpu", data_dir=None) -> dict:
    """Train (or reload) the runs and write Fig. 5, Fig. 6, HAT rho and the heat maps; returns
    the summary dict (also written as out_dir/summary_<profile>.json). An out_dir or results_dir
    that cannot be written is a ConfigError before anything trains."""
    from dwa_core.files import check_output_dir

    out_dir = Path(out_dir)
    check_output_dir(out_dir, "out_dir")
    if results_dir is not None:
        check_output_dir(results_dir, "results_dir")
    names = available(PAPER_APPROACHES) or ["sgd"]
    runs = run_suite(profile, names + ["random", "joint"], seeds, results_dir, device, data_dir)
    random, joint = runs.pop("random"), runs.pop("joint")
    cfg = {"profile": profile, **PROFILES[profile], "approaches": names,
           "configs": {n: r[0].config for n, r in runs.items()}}
    stem = lambda s: out_dir / f"{s}_{profile}"  # noqa: E731
    plots.save_figure(plots.plot_accuracy_curves({n: r[0] for n, r in runs.items()}), stem("fig5_accuracy"),
                      cfg, command)
    plots.save_figure(plots.plot_retention(runs, random, joint), stem("fig6_retention"), cfg, command)
    plots.save_figure(plots.plot_forgetting_ratio(runs, random, joint), stem("hat_rho"), cfg, command)
    for name, res in runs.items():
        plots.save_figure(plots.plot_accuracy_matrix(res[0]), stem(f"accmatrix_{name}"), cfg, command)
    result = summary(runs, random, joint)
    (out_dir / f"summary_{profile}.json").write_text(json.dumps(result, indent=1))
    diagnosis_figures(out_dir, command)
    return result


def diagnosis_figures(out_dir="figures", command: str = "") -> list[Path]:
    """The figures of the committed DWA diagnoses (tables/dwa-diagnosis-<benchmark>.json, written by
    `python -m dwa_core.diagnosis` from full runs): the measures against the accuracy drop (ρ over
    distinct pairs), the ablations' bars (95 % intervals over seeds) and, when the file has them,
    the embedding measures after each task. Nothing is trained; returns the PNG paths."""
    from dwa_core import diagnosis
    from dwa_core.compare import TABLES_DIR
    from dwa_core.diagnosis.embedding import by_task

    written = []
    for path in sorted(TABLES_DIR.glob("dwa-diagnosis-*.json")):
        frames = diagnosis.load_diagnosis(path)
        name = path.stem.removeprefix("dwa-diagnosis-")
        cfg = {"data": f"tables/{path.name}", "labels": list(frames)}
        frame = diagnosis.all_layers(frames)
        title = f"Why DWA forgets - {name} (full runs, offline data; ρ over distinct pairs)"
        written += plots.save_figure(plots.plot_dwa_diagnosis(frame, title),
                                     Path(out_dir) / f"dwa_diagnosis_{name}", cfg, command)[:1]
        written += plots.save_figure(plots.plot_ablation_bars(diagnosis.summarise(frames, intervals=True)),
                                     Path(out_dir) / f"dwa_ablations_{name}", cfg, command)[:1]
        embedding = diagnosis.load_diagnosis(path, "embedding")
        if embedding:
            title = f"DWA's task embedding after each task - {name} (full runs, offline data, seed mean)"
            written += plots.save_figure(plots.plot_embedding_by_task(by_task(embedding), title),
                                         Path(out_dir) / f"dwa_embedding_{name}", cfg, command)[:1]
    return written
