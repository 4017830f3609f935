"""Regenerate every committed figure: `python -m dwa_core.figures --profile smoke|paper`.

smoke: split-digits (offline data), 100 samples per class, 2 seeds, small networks trained long
enough at a constant lr to forget (SGD clearly forgets, HAT does not; a few minutes on 2 CPU cores).
paper: the paper's settings on `mixture` (seed_spec §10.3), 10 seeds.
The notebooks call the same functions (`profile_config`, `run_suite`, `make_figures`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from dwa_core import approaches, metrics, plots
from dwa_core.config import ExperimentConfig, TrainConfig
from dwa_core.experiment import run_experiment

PAPER_APPROACHES = ("dwa", "ewc", "sgd", "hat")  # Fig. 5 / Fig. 6 panels, in the paper's order

# "train": TrainConfig fields; "network_params": per network family; "overrides": per approach,
# {"train": ..., "approach_params": ..., "network_params": ...} on top of the rest.
PROFILES = {
    # A forgetting-prone smoke setting: 30 epochs of plain SGD at a constant lr 0.1 (no decay, no
    # early stop) on a small MLP without dropout; split-digits with 30 samples per class and 3
    # epochs hardly forgot at all. HAT keeps its network's dropout (2 gated layers of 50 units).
    # DWA: a smaller, shorter run (lr 0.1 diverges; its curriculum fits in 5 of its 10 epochs) and
    # λ3 = 10: at the paper's 500 the sparsity hinge is so stiff at lr 0.05 on this small MLP that
    # one step saturates every tanh mask (|H| = 1, no gradient left) and the task is not learned.
    "smoke": {"benchmark": "split-digits", "benchmark_params": {"per_class": 100}, "seeds": [0, 1],
              "train": {"epochs": 30, "lr": 0.1, "lr_schedule": "original-code"},
              "network_params": {"plain": {"hidden": 50, "layers": 3, "dropout": 0.0},
                                 "hat": {"nhid": 50, "nlayers": 2}, "dwa": {"hidden": 100}},
              "overrides": {"dwa": {"train": {"epochs": 10, "lr": 0.05},
                                    "approach_params": {"curriculum": "linear:5:0.2",
                                                        "lamb_sparsity": 10.0}}}},
    "paper": {"benchmark": "mixture", "benchmark_params": {}, "train": {"epochs": 200},
              "seeds": list(range(10))},
}


def profile_config(profile: str, approach: str, seed: int = 0, device: str = "cpu", data_dir=None,
                   output_dir: str = "results", **approach_params) -> ExperimentConfig:
    """The ExperimentConfig of one run of `profile` (see PROFILES); approach_params given here
    override the profile's."""
    p = PROFILES[profile]
    over = p.get("overrides", {}).get(approach, {})
    family = approaches.get(approach).family if approach in approaches.names() else None
    network = {**p.get("network_params", {}).get(family, {}), **over.get("network_params", {})}
    kwargs = {"data_dir": data_dir} if data_dir else {}
    return ExperimentConfig(benchmark=p["benchmark"], approach=approach, seed=seed, device=device,
                            benchmark_params=dict(p["benchmark_params"]),
                            approach_params={**over.get("approach_params", {}), **approach_params},
                            network_params=network,
                            train=replace(TrainConfig(), **{**p.get("train", {}), **over.get("train", {})}),
                            output_dir=output_dir, **kwargs)


def available(names) -> list[str]:
    """The approaches of `names` that are registered (helpers are still adding some)."""
    have = set(approaches.names())
    return [n for n in names if n in have]


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

    cfg = profile_config(profile, "dwa", seed, device, data_dir)
    dev = resolve_device(cfg.device)
    bench = data.load_benchmark(cfg, dev)
    approach = build_approach(cfg, validate(cfg), bench, dev)
    for t, task in enumerate(bench.tasks):
        approach.fit(t, task)
    return introspect(approach, bench, n_per_task=n_per_task, seed=seed), cfg.benchmark


def summary(runs: dict, random, joint) -> dict:
    """seed_spec §9 summary numbers per approach (seed 0): final accuracy and % forgotten, plus
    HAT's rho (mean over t) with its 95% CI over seeds, and the final matrices."""
    out = {}
    for name, seeds in runs.items():
        acc = seeds[0].acc_matrix()
        rhos = [metrics.forgetting_ratio(r.acc_matrix(), random[i % len(random)].acc_matrix(),
                                         joint[i % len(joint)].acc_matrix()).mean()
                for i, r in enumerate(seeds)]
        rho, ci = metrics.mean_ci(rhos)
        out[name] = {"final_accuracy": float(acc[-1].mean()),
                     "percent_forgotten": metrics.percent_forgotten(acc, random[0].acc_matrix(),
                                                                    joint[0].acc_matrix()),
                     "backward_transfer": metrics.backward_transfer(acc),
                     "rho_mean": rho, "rho_ci95": ci, "acc_matrix": acc.tolist()}
    return out


def make_figures(profile: str, out_dir="figures", results_dir=None, command: str = "", seeds=None,
                 device: str = "cpu", data_dir=None) -> dict:
    """Train (or reload) the runs and write Fig. 5, Fig. 6, HAT rho and the heat maps; returns
    the summary dict (also written as out_dir/summary_<profile>.json)."""
    out_dir = Path(out_dir)
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
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="smoke")
    parser.add_argument("--out", default="figures")
    parser.add_argument("--results-dir", default=None, help="cache runs here (resumed on rerun)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")  # the command only writes files (dwa_core.plots leaves the backend alone)
    start = time.perf_counter()
    command = "python -m dwa_core.figures " + " ".join(argv if argv is not None else sys.argv[1:])
    result = make_figures(args.profile, args.out, args.results_dir, command.strip(), device=args.device,
                          data_dir=args.data_dir)
    for name, row in result.items():
        print(f"{name:12s} final acc {row['final_accuracy']:.3f}  % forgotten {row['percent_forgotten']:.1f}"
              f"  rho {row['rho_mean']:.3f} ({row['rho_ci95']:.3f})")
    print(f"figures written to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
