"""HAT's compression experiment (the HAT paper's network-capacity analysis; dwa_core.compression) on
the paper's network: HAT's AlexNet trained on the first task of a benchmark for several values of
the compressibility c, recording after each epoch the fraction of gated units and weights still
active (mask > 0.5) and the accuracy.

    PYTHONPATH=. python benchmarks/hat_compression.py [--benchmark mixture-offline] [--per-class 50] \\
        [--epochs 8] [--c 0.1 0.25 0.75 2.5 7.5] [--seed 0] \\
        [--output tables/hat-compression-mixture-offline.json] [--figure figures/hat_compression_mixture-offline]

Writes the data file (every row but the masks, the config, the command, the numerics version) and
the figure (plots.plot_compression); notebook 08 shows both. No hyper-parameter is chosen here, so
the test accuracy is reported, not selected on."""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from dwa_core import numerics, plots
from dwa_core.compression import compression_analysis
from dwa_core.config import ExperimentConfig, TrainConfig
from dwa_core.results import atomic_write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", default="mixture-offline")
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--c", type=float, nargs="+", default=[0.1, 0.25, 0.75, 2.5, 7.5])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="tables/hat-compression-mixture-offline.json")
    parser.add_argument("--figure", default="figures/hat_compression_mixture-offline")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = ExperimentConfig(benchmark=args.benchmark, approach="hat", seed=args.seed,
                           benchmark_params={"per_class": args.per_class, "eval_per_class": args.per_class},
                           train=TrainConfig(epochs=args.epochs, batch_size=32, lr=0.05))
    start = time.process_time()
    frame = compression_analysis(cfg, args.c, keep_masks=False).drop(columns="masks")
    command = " ".join(["python benchmarks/hat_compression.py", *sys.argv[1:]])
    data = {"command": command, "numerics": numerics.identity(), "config": cfg.to_dict(),
            "cpu_seconds": time.process_time() - start, "rows": frame.to_dict(orient="records")}
    atomic_write(args.output, (json.dumps(data, indent=1) + "\n").encode())
    title = f"HAT compression - {plots.benchmark_label(args.benchmark)}, first task, AlexNet (seed {args.seed})"
    plots.save_figure(plots.plot_compression(frame, title), args.figure, cfg.to_dict(), command)
    print(frame.groupby("c").last()[["active_units", "active_weights", "test_acc"]].round(3).to_string())
    print(f"written {args.output} and {args.figure}.png ({data['cpu_seconds'] / 60:.1f} CPU min)")


if __name__ == "__main__":
    main()
