"""Training samples/s of every registered approach relative to `sgd` on the same network and data:
the MLP on permuted-digits at 1x28x28 and the AlexNet on split-digits at 3x32x32.

    python benchmarks/bench_approaches.py [--device cpu] [--epochs 2] [--tasks 2] [--repeat 3]
        [--arch mlp alexnet] [--only hat sgd] [--json FILE]

Samples/s = training rows x epochs over the wall time of `fit` summed over the tasks (it includes
the per-epoch evaluation on train/valid, the same for every approach). Tasks >= 1 are included so
that approaches pay for their penalties/masks. Approaches that fail are reported and skipped.
The ratio printed, sgd samples/s / the approach's (its cost vs sgd), is measured with the two runs
alternated in one process, so it stays comparable on a loaded machine; --json writes it too.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from _machine import machine, write_json

from dwa_core import ExperimentConfig, TrainConfig, approaches
from dwa_core.experiment import run_experiment

SETTINGS = {"mlp": ("permuted-digits", "1x28x28"), "alexnet": ("split-digits", "3x32x32")}
# Network params that give a family's variant the plain network's sizes (MLP 800 x 3).
SAME_SIZE = {("mlp", "hat"): {"hidden": 800, "layers": 3}}


def samples_per_second(name: str, arch: str, args) -> float:
    benchmark, shape = SETTINGS[arch]
    family = approaches.get(name).family
    cfg = ExperimentConfig(benchmark=benchmark, approach=name, network=arch, device=args.device,
                           benchmark_params={"shape": shape}, max_tasks=args.tasks,
                           network_params=SAME_SIZE.get((arch, family), {}),
                           train=TrainConfig(epochs=args.epochs, batch_size=64, lr_patience=1000))
    res = run_experiment(cfg, save=False)
    rows = sum(n * len(h) for n, h in zip(_train_sizes(cfg), res.history))
    return rows / sum(res.task_seconds) if rows else 0.0


def _train_sizes(cfg):
    from dwa_core.data import load_benchmark
    from dwa_core.experiment import resolve_device
    return [len(t.train.y) for t in load_benchmark(cfg, resolve_device(cfg.device)).tasks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--arch", nargs="*", default=list(SETTINGS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--verbose", action="store_true", help="print the traceback of failures")
    parser.add_argument("--only", nargs="*", default=None, help="approach names (default: all)")
    parser.add_argument("--json", help="also write the results (and the machine's load) to this file")
    args = parser.parse_args()
    names = args.only or approaches.names()
    before, rows = machine(), []
    for arch in args.arch:
        print(f"\n{arch} on {SETTINGS[arch][0]} {SETTINGS[arch][1]} (best of {args.repeat}, "
              f"sgd timed alternately with each approach)")
        print(f"{'approach':<16}{'samples/s':>12}{'sgd samples/s':>15}{'cost vs sgd':>13}")
        for name in names:
            try:  # interleave with sgd so both see the same machine load
                runs = [(samples_per_second("sgd", arch, args), samples_per_second(name, arch, args))
                        for _ in range(args.repeat)]
            except Exception as err:  # noqa: BLE001 - report and go on with the others
                print(f"{name:<16}  skipped: {type(err).__name__}: {err}".splitlines()[0][:150])
                if args.verbose:
                    traceback.print_exc()
                continue
            base, rate = max(r[0] for r in runs), max(r[1] for r in runs)
            if rate <= 0:
                print(f"{name:<16}  no training rows timed")
                continue
            print(f"{name:<16}{rate:>12,.0f}{base:>15,.0f}{base / rate:>12.2f}x", flush=True)
            rows.append(dict(arch=arch, approach=name, samples_per_s=rate, sgd_samples_per_s=base,
                             cost_vs_sgd=base / rate))
    write_json(args.json, dict(benchmark="bench_approaches",
                               command=" ".join(["bench_approaches.py"] + sys.argv[1:]),
                               epochs=args.epochs, tasks=args.tasks, repeat=args.repeat, rows=rows,
                               ratios={f"sgd / {r['approach']}, {r['arch']}": r["cost_vs_sgd"]
                                       for r in rows}),
               before)

if __name__ == "__main__":
    main()
