"""Training samples/s of the library's loop vs a bare hand-written PyTorch loop, same model and
tensors, for the MLP (1x28x28) and the AlexNet (3x32x32) at the paper's batch size; peak memory.

    python benchmarks/bench_loop.py [--device cpu] [--epochs 3] [--repeat 8 2] [--json FILE]

The ratio ours/bare (best epoch of each, the two loops interleaved epoch by epoch in one process) is
what to compare across machines: a loaded machine slows both loops alike.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import torch
import torch.nn.functional as F
from _machine import machine, write_json

from dwa_core import ExperimentConfig, TrainConfig
from dwa_core.data import load_benchmark
from dwa_core.experiment import build_approach, resolve_device, validate


def bare_epoch(model, x, y, batch_size, lr, clip, generator):
    """The loop a researcher would write by hand."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    order = torch.randperm(len(y), generator=generator).to(x.device)
    for start in range(0, len(y), batch_size):
        index = order[start:start + batch_size]
        loss = F.cross_entropy(model(x[index], 0), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(shape: str, device, epochs: int, repeat: int) -> dict:
    cfg = ExperimentConfig(benchmark="split-digits", benchmark_params={"shape": shape},
                           train=TrainConfig(batch_size=64), device=str(device), max_tasks=1)
    bench = load_benchmark(cfg, device)
    task = bench.tasks[0]
    # Repeat the real images so an epoch is long enough to time.
    task.train.x, task.train.y = task.train.x.repeat(repeat, 1, 1, 1), task.train.y.repeat(repeat)
    approach = build_approach(cfg, validate(cfg), bench, device)
    n = len(task.train.y)
    optimizer = approach.make_optimizer(cfg.train.lr)
    timings = {"ours": [], "bare": []}
    for _ in range(epochs):  # interleave so both see the same machine state
        sync(device)
        start = time.perf_counter()
        approach.train_epoch(0, 0, task.train, 0, optimizer)
        sync(device)
        timings["ours"].append(n / (time.perf_counter() - start))
        start = time.perf_counter()
        bare_epoch(approach.model, task.train.x, task.train.y, 64, cfg.train.lr, approach.clip_grad,
                   approach.generator)
        sync(device)
        timings["bare"].append(n / (time.perf_counter() - start))
    best = {k: max(v) for k, v in timings.items()}
    ratio = best["ours"] / best["bare"]
    return {"network": bench.network, "shape": shape, "samples": n, **best, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeat", type=int, nargs=2, default=[8, 2], metavar=("MLP", "ALEXNET"),
                        help="how many times each network's training set is repeated per epoch")
    parser.add_argument("--json", help="also write the results (and the machine's load) to this file")
    args = parser.parse_args()
    before = machine()
    device = resolve_device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'network':<8} {'input':<9} {'samples':>7} {'ours/s':>9} {'bare/s':>9} {'ours/bare':>9}")
    rows = []
    for shape, repeat in zip(("1x28x28", "3x32x32"), args.repeat):
        rows.append(r := measure(shape, device, args.epochs, repeat))
        print(f"{r['network']:<8} {r['shape']:<9} {r['samples']:>7} {r['ours']:>9.0f} {r['bare']:>9.0f} "
              f"{r['ratio']:>9.3f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak:.0f} MiB")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    write_json(args.json, dict(benchmark="bench_loop", command=" ".join(["bench_loop.py"] + sys.argv[1:]),
                               device=str(device), epochs=args.epochs, rows=rows,
                               ratios={f"ours / bare, {r['network']} {r['shape']}": r["ratio"] for r in rows},
                               peak_rss_mb=peak), before)


if __name__ == "__main__":
    main()
