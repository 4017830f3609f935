"""Does DWA learn its first task? In each setting the project ships, with the paper's initialisation
and with `mask_start` (docs/dwa-initial-signal.md), on a few seeds: task 0's test accuracy after
training task 0 alone (`max_tasks=1`; runs are prefix-stable, so this is the first entry of the full
run's accuracy matrix), and the training loss of its first and last epoch.

    python benchmarks/dwa_first_task_settings.py --output tables/dwa-first-task.json

Settings: the explorer's defaults (split-digits, 3x50 masked MLP, 5 epochs), the smoke figures'
profile (split-digits, 3x50, 30 epochs) and the split-fmnist comparison's protocol (2x800, 10
epochs). Chance is 0.5 (two-class tasks). Each run trains in a temporary folder (nothing reused).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time

import torch

from dwa_core import numerics
from dwa_core.experiment import run_experiment
from dwa_core.sweep.define import load_definition

INITS = {"paper": None, "mask_start=0.2": 0.2}


def settings() -> dict:
    """{name: the DWA ExperimentConfig of that setting (seed 0)}."""
    from dwa_core.figures import profile_config
    from dwa_core.widgets import Explorer

    comparison = load_definition("dwa-ablations-split-fmnist").base
    return {"explorer defaults (split-digits, 3x50, 5 epochs)": Explorer(approach="dwa").config(),
            "smoke figures (split-digits, 3x50, 30 epochs)": profile_config("smoke", "dwa"),
            "comparison protocol (split-fmnist, 2x800, 10 epochs)": comparison.replace(task_snapshots=False)}


def first_task(cfg, mask_start, seed: int, folder: str) -> dict:
    """Train task 0 of `cfg` with `mask_start` and `seed`: its test accuracy and first/last epoch's
    training loss."""
    network = {**cfg.network_params, "mask_start": mask_start}
    if mask_start is None:
        network.pop("mask_start")
    run = cfg.replace(seed=seed, max_tasks=1, network_params=network, output_dir=folder)
    results = run_experiment(run)
    losses = [row["train_loss"] for row in results.history[0]]
    return {"acc": results.acc[0][0], "first_loss": losses[0], "last_loss": losses[-1]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", default=None, help="a JSON data file to write")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows, start = [], time.process_time()
    with tempfile.TemporaryDirectory() as folder:
        for name, cfg in settings().items():
            for init, mask_start in INITS.items():
                runs = [first_task(cfg, mask_start, s, folder) for s in args.seeds]
                accs = [r["acc"] for r in runs]
                rows.append({"setting": name, "init": init, "seeds": args.seeds, "acc": accs,
                             "first_loss": [r["first_loss"] for r in runs],
                             "last_loss": [r["last_loss"] for r in runs]})
                losses = " / ".join(f"{r['first_loss']:.3f} -> {r['last_loss']:.3f}" for r in runs)
                print(f"| {name} | {init} | {' / '.join(f'{a:.3f}' for a in accs)} | {losses} |", flush=True)
    print(f"CPU time {time.process_time() - start:.0f} s; ln 2 = {math.log(2):.3f}")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"command": "python benchmarks/dwa_first_task_settings.py " + " ".join(sys.argv[1:]),
                       "numerics": numerics.identity(), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
