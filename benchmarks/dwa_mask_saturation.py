"""How fast DWA's tanh masks saturate on task 0 (the diagnosis' finding, docs/why-dwa-forgets.md):
after each of the first SGD steps, the fraction of mask entries with |H| > 0.99 and the mean |H|, on
split-fmnist's first task under the comparison's protocol (lr 0.1, batch 64, 2x800 MLP).

    python benchmarks/dwa_mask_saturation.py [--lamb-sparsity 500 10] [--steps 8] [--every 1] [--lr 0.1]
"""

from __future__ import annotations

import argparse

import torch

from dwa_core import ExperimentConfig, TrainConfig, data
from dwa_core.experiment import build_approach, validate


def saturation(model) -> tuple[float, float]:
    """(fraction of entries with |H| > 0.99, mean |H|) over every masked layer of the last forward."""
    total = saturated = mass = 0.0
    for mask in model.state.masks.values():
        h = mask.materialise().abs()
        total += h.numel()
        saturated += (h > 0.99).sum().item()
        mass += h.sum().item()
    return saturated / total, mass / total


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lamb-sparsity", type=float, nargs="+", default=[500.0, 10.0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--every", type=int, default=1, help="print every this many steps")
    args = parser.parse_args(argv)
    for lamb in args.lamb_sparsity:
        cfg = ExperimentConfig(benchmark="split-fmnist", approach="dwa", seed=0,
                               benchmark_params={"per_class": 100, "eval_per_class": 100},
                               network_params={"hidden": 800, "layers": 2},
                               train=TrainConfig(lr=args.lr, batch_size=64),
                               approach_params={"lamb_sparsity": lamb, "curriculum": None})
        plan, device = validate(cfg), torch.device("cpu")
        bench = data.load_benchmark(cfg, device)
        approach = build_approach(cfg, plan, bench, device)
        optimizer = approach.make_optimizer(args.lr)
        train = bench.tasks[0].train
        probe = train.x[:16]
        approach.model.eval()
        approach.forward(probe, 0)
        print(f"λ3 = {lamb:g}: step 0 (init)  saturated {saturation(approach.model)[0]:.3f}  "
              f"mean |H| {saturation(approach.model)[1]:.3f}")
        for step in range(1, args.steps + 1):
            approach.model.train()
            start = (step - 1) * 64 % max(len(train) - 64, 1)  # cycle over the task's samples
            rows = slice(start, start + 64)
            loss = approach.loss(approach.forward(train.x[rows], 0), train.y[rows], 0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            approach.model.eval()
            with torch.no_grad():
                approach.forward(probe, 0)
            frac, mean = saturation(approach.model)
            if step % args.every and step != args.steps:
                continue
            print(f"λ3 = {lamb:g}: step {step}  loss {loss.item():.3f}  saturated {frac:.3f}  "
                  f"mean |H| {mean:.3f}")


if __name__ == "__main__":
    main()
