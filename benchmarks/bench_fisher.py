"""Per-sample Fisher: the batched form (one backward per batch, as EWC and IMM compute it:
dwa_core.functional.fisher.per_sample_fisher) vs the loop of one backward per sample
(fisher_diagonal over batches of one), on the plain MLP 2x800 (1x28x28) and the plain AlexNet
(3x32x32), 5 heads of 2 classes, random data.

    PYTHONPATH=. python benchmarks/bench_fisher.py [--samples 256] [--batch 64] [--repeat 2] [--json FILE]

The ratio printed, loop seconds / batched seconds (the two alternated in one process, best of --repeat
each), is what to compare across machines. The largest relative difference between the two Fishers
is printed as a sanity check (tests/test_fisher_forms.py is the test). DWA's per-sample Fisher has no
batched form yet (its criterion goes through the per-sample masks): it is the loop."""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F
from _machine import machine, write_json

from dwa_core.functional.fisher import fisher_diagonal, iterate_batches, per_sample_fisher
from dwa_core.models import build

NETWORKS = {"mlp 2x800": ("mlp", (1, 28, 28), {"hidden": 800, "layers": 2}),
            "alexnet": ("alexnet", (3, 32, 32), {})}


def measure(label: str, samples: int, batch: int, repeat: int) -> dict:
    """Best-of-`repeat` seconds of each form over the same `samples` inputs, alternated."""
    arch, shape, params = NETWORKS[label]
    model = build(arch, "plain", shape, [2] * 5, params=params)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(samples, *shape, generator=gen), torch.randint(0, 2, (samples,), generator=gen)

    def loss(xb, yb):
        return F.cross_entropy(model(xb, 0), yb)

    times = {"batched": [], "loop": []}
    for _ in range(repeat):
        start = time.perf_counter()
        batched = per_sample_fisher(model, iterate_batches(x, y, batch), 0, train_mode=False)
        times["batched"].append(time.perf_counter() - start)
        start = time.perf_counter()
        loop = fisher_diagonal(model, iterate_batches(x, y, 1), loss, train_mode=False)
        times["loop"].append(time.perf_counter() - start)
    diff = max(((batched[n] - loop[n]).abs().max() / loop[n].abs().max().clamp_min(1e-30)).item()
               for n in loop)
    best = {k: min(v) for k, v in times.items()}
    return dict(network=label, samples=samples, batch=batch, batched_s=best["batched"], loop_s=best["loop"],
                ratio=best["loop"] / best["batched"], max_rel_diff=diff)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", help="also write the results (and the machine's load) to this file")
    args = parser.parse_args()
    before, rows = machine(), []
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; {args.samples} samples, "
          f"batched form in batches of {args.batch}, best of {args.repeat}")
    print(f"{'network':<11}{'batched (s)':>12}{'loop (s)':>10}{'ms/sample loop':>16}{'loop/batched':>14}"
          f"{'max rel diff':>14}")
    for label in NETWORKS:
        r = measure(label, args.samples, args.batch, args.repeat)
        rows.append(r)
        per_sample_ms = 1000 * r["loop_s"] / r["samples"]
        print(f"{label:<11}{r['batched_s']:>12.3f}{r['loop_s']:>10.3f}{per_sample_ms:>16.2f}"
              f"{r['ratio']:>13.1f}x{r['max_rel_diff']:>14.1e}", flush=True)
    print("DWA's per-sample Fisher: the loop only (no batched form yet)")
    write_json(args.json, dict(benchmark="bench_fisher",
                               command=" ".join(["bench_fisher.py"] + sys.argv[1:]), rows=rows,
                               ratios={f"loop / batched, {r['network']}": r["ratio"] for r in rows}),
               before)


if __name__ == "__main__":
    main()
