"""Train one approach on the first task of a benchmark and print loss and accuracy per epoch.

Used for docs/dwa-initial-signal.md (does the DWA AlexNet learn at all under a protocol?):

    python benchmarks/dwa_first_task.py --per-class 500 --epochs 3                      # paper init
    python benchmarks/dwa_first_task.py --per-class 500 --epochs 3 \
        --network-param mask_start=0.2 --clip-grad 10
    python benchmarks/dwa_first_task.py --approach sgd --per-class 500 --epochs 3        # plain AlexNet
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from dwa_core import ExperimentConfig, TrainConfig, data
from dwa_core.experiment import build_approach, resolve_device, seed_everything, validate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", default="mixture-offline")
    parser.add_argument("--approach", default="dwa")
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--clip-grad", type=float, default=None)
    parser.add_argument("--network-param", action="append", default=[], metavar="KEY=JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    network = {k: json.loads(v) for k, _, v in (p.partition("=") for p in args.network_param)}
    cfg = ExperimentConfig(benchmark=args.benchmark, approach=args.approach, seed=args.seed,
                           benchmark_params={"per_class": args.per_class}, network_params=network,
                           train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                             clip_grad=args.clip_grad))
    seed_everything(cfg.seed)
    plan, device = validate(cfg), resolve_device("cpu")
    bench = data.load_benchmark(cfg, device)
    approach = build_approach(cfg, plan, bench, device)
    start = time.perf_counter()
    history = approach.fit(0, bench.tasks[0])
    loss, acc = approach.test(0, bench.tasks[0])
    for row in history:
        print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4g}, valid acc {row['valid_acc']:.3f}")
    seconds = time.perf_counter() - start
    print(f"{bench.tasks[0].name}: test accuracy {acc:.3f}, loss {loss:.4g} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
