"""The measured effect of the fidelity switches of the trustworthy-numbers round: each run once at the
library's default and once with the switch at the original code's value, everything else equal.

    python benchmarks/fidelity_effects.py [--seeds 0 1 2] [--epochs 10] [--per-class 100]

Prints, per switch, the mean over seeds of the final average test accuracy and of backward transfer
for both values (split-digits, the default 3x800 MLP with dropout 0.5, the library's protocol), and
the ratio of the train-mode to the eval-mode EWC Fisher after task 0 (mean over parameters of
Σ F_train / Σ F_eval), with how much two train-mode estimates differ."""

from __future__ import annotations

import argparse

import numpy as np
import torch

from dwa_core import ExperimentConfig, TrainConfig, data, fidelity, metrics, run_experiment
from dwa_core.functional.fisher import task_fisher
from dwa_core.experiment import build_approach, validate

SWITCHES = [("ewc", "fisher_combine"), ("ewc", "fisher_mode"), ("imm-mode", "fisher_mode"),
            ("train", "valid_loss", "ewc"), ("train", "valid_loss", "lwf"), ("train", "valid_loss", "hat")]


def base(approach: str, seed: int, epochs: int, per_class: int) -> ExperimentConfig:
    return ExperimentConfig(benchmark="split-digits", approach=approach, seed=seed, device="cpu",
                            benchmark_params={"per_class": per_class},
                            train=TrainConfig(epochs=epochs, batch_size=64, lr=0.1))


def scores(cfg: ExperimentConfig) -> tuple[float, float]:
    acc = run_experiment(cfg, save=False).acc_matrix()
    return metrics.average_accuracy(acc), metrics.backward_transfer(acc)


def fisher_ratio(seed: int, epochs: int, per_class: int) -> tuple[float, float]:
    cfg = base("ewc", seed, epochs, per_class)
    bench = data.load_benchmark(cfg.replace(max_tasks=1), torch.device("cpu"))
    approach = build_approach(cfg, validate(cfg), bench, torch.device("cpu"))
    approach.fit(0, bench.tasks[0])
    task = bench.tasks[0]
    ev = task_fisher(approach, 0, task, 20, mode="eval")
    tr1, tr2 = (task_fisher(approach, 0, task, 20, mode="train") for _ in range(2))
    ratio = np.mean([(tr1[k].sum() / ev[k].sum()).item() for k in ev if ev[k].sum() > 0])
    spread = np.mean([((tr1[k] - tr2[k]).abs().sum() / tr1[k].abs().sum()).item() for k in tr1
                      if tr1[k].abs().sum() > 0])
    return float(ratio), float(spread)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"split-digits, {args.per_class} images per class, {args.epochs} epochs, seeds {args.seeds}")
    for entry in SWITCHES:
        owner, field = entry[:2]
        approach = entry[2] if len(entry) > 2 else owner
        switch = fidelity.get(owner, field)
        rows = {}
        for label, value in (("default", switch.default), ("original", switch.original)):
            runs = [scores(fidelity.flip(base(approach, s, args.epochs, args.per_class), switch, value))
                    for s in args.seeds]
            rows[label] = np.mean(runs, axis=0)
        print(f"{approach:9s} {switch.name:24s} {switch.default!s:>6} -> {switch.original!s:<6} "
              f"avg acc {rows['default'][0]:.3f} -> {rows['original'][0]:.3f}   "
              f"BWT {rows['default'][1]:+.3f} -> {rows['original'][1]:+.3f}")
    for s in args.seeds:
        ratio, spread = fisher_ratio(s, args.epochs, args.per_class)
        print(f"EWC Fisher after task 0 (seed {s}): train-mode / eval-mode = {ratio:.1f}x; two train-mode "
              f"estimates differ by {spread:.0%} (relative L1)")


if __name__ == "__main__":
    main()
