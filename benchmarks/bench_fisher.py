"""Per-sample Fisher: the batched form (one backward per batch) vs the loop of one backward per
sample (fisher_diagonal over batches of one), 5 heads of 2 classes, random data, on
- the plain MLP 2x800 (1x28x28) and the plain AlexNet (3x32x32): every parameter, EWC's and IMM's
  criterion (dwa_core.functional.fisher.per_sample_fisher);
- the DWA MLP 2x800 (1x28x28) and the DWA AlexNet (3x32x32): the masked weights under DWA's
  criterion (dwa_core.functional.fisher.masked_per_sample_fisher), at task 0 (the loop's loss,
  DWA.loss, is CE + λ3 sparsity) and at task 1 ("t1": a Fisher is held, so the loop's loss also
  has the plasticity term, as in every DWA Fisher pass after the first task). The batched form
  differentiates the CE alone: the mask terms have no gradient in the masked weights. The DWA rows
  are measured again under the other selectable numerics ("numerics 3" while 5 is the default;
  dwa_core/numerics.py).

    PYTHONPATH=. python benchmarks/bench_fisher.py [--samples 256] [--batch 64] [--repeat 2] [--json FILE]
        [--only NETWORK ...]

The ratio printed, loop seconds / batched seconds (the two alternated in one process, best of --repeat
each), is what to compare across machines. The largest relative difference between the two Fishers
is printed as a sanity check (tests/test_fisher_forms.py and tests/test_dwa_fisher.py are the tests)."""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F
from _machine import machine, write_json

from dwa_core import numerics
from dwa_core.approaches.dwa import DWA
from dwa_core.config import TrainConfig
from dwa_core.functional.fisher import (
    fisher_diagonal,
    iterate_batches,
    masked_per_sample_fisher,
    per_sample_fisher,
)
from dwa_core.models import build

NETWORKS = {"mlp 2x800": ("mlp", "plain", (1, 28, 28), {"hidden": 800, "layers": 2}, 0),
            "alexnet": ("alexnet", "plain", (3, 32, 32), {}, 0),
            "mlp-dwa 2x800": ("mlp", "dwa", (1, 28, 28), {"hidden": 800, "layers": 2}, 0),
            "alexnet-dwa": ("alexnet", "dwa", (3, 32, 32), {}, 0),
            "mlp-dwa 2x800 t1": ("mlp", "dwa", (1, 28, 28), {"hidden": 800, "layers": 2}, 1),
            "alexnet-dwa t1": ("alexnet", "dwa", (3, 32, 32), {}, 1)}
# The DWA rows again under the other selectable numerics (dwa_core/numerics.py: 5 while 3 is the
# default); both forms then use its kernels.
OTHER = {f"{label} numerics {numerics.other()}": label for label in NETWORKS if "-dwa" in label}
NETWORKS.update({label: NETWORKS[base] for label, base in OTHER.items()})


def forms(family: str, model, t: int, x, y):
    """(batched(batches), loss of one batch for the loop) of this network family at task t. At task
    1 DWA holds a Fisher (task 0's, on the same data), so its loss has the plasticity term too."""
    if family == "plain":
        return (lambda batches: per_sample_fisher(model, batches, t, train_mode=False),
                lambda xb, yb: F.cross_entropy(model(xb, t), yb))
    dwa = DWA(model, TrainConfig())
    if t > 0:  # as after task 0 in training: the network holds the Fisher for its fused plasticity term
        dwa.fisher = masked_per_sample_fisher(model, iterate_batches(x, y, 64), 0)
        dwa._share_fisher()
    return (lambda batches: masked_per_sample_fisher(model, batches, t, train_mode=False),
            lambda xb, yb: dwa.loss(dwa.forward(xb, t), yb, t))


def measure(label: str, samples: int, batch: int, repeat: int) -> dict:
    """Best-of-`repeat` seconds of each form over the same `samples` inputs, alternated (under the
    other numerics for the OTHER rows)."""
    with numerics.using(numerics.other() if label in OTHER else numerics.VERSION):
        return _measure(label, samples, batch, repeat)


def _measure(label: str, samples: int, batch: int, repeat: int) -> dict:
    arch, family, shape, params, t = NETWORKS[label]
    model = build(arch, family, shape, [2] * 5, params=params)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(samples, *shape, generator=gen), torch.randint(0, 2, (samples,), generator=gen)
    batched_form, loss = forms(family, model, t, x, y)
    times = {"batched": [], "loop": []}
    for _ in range(repeat):
        start = time.perf_counter()
        batched = batched_form(iterate_batches(x, y, batch))
        times["batched"].append(time.perf_counter() - start)
        start = time.perf_counter()
        loop = fisher_diagonal(model, iterate_batches(x, y, 1), loss, train_mode=False)
        times["loop"].append(time.perf_counter() - start)
    diff = max(((batched[n] - loop[n]).abs().max() / loop[n].abs().max().clamp_min(1e-30)).item()
               for n in batched)
    best = {k: min(v) for k, v in times.items()}
    return dict(network=label, samples=samples, batch=batch, batched_s=best["batched"], loop_s=best["loop"],
                ratio=best["loop"] / best["batched"], max_rel_diff=diff)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", help="also write the results (and the machine's load) to this file")
    parser.add_argument("--only", nargs="+", choices=list(NETWORKS), metavar="NETWORK",
                        help=f"measure only these rows ({', '.join(NETWORKS)})")
    args = parser.parse_args()
    before, rows = machine(), []
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; {args.samples} samples, "
          f"batched form in batches of {args.batch}, best of {args.repeat}")
    print(f"{'network':<28}{'batched (s)':>12}{'loop (s)':>10}{'ms/sample loop':>16}{'loop/batched':>14}"
          f"{'max rel diff':>14}")
    for label in args.only or NETWORKS:
        r = measure(label, args.samples, args.batch, args.repeat)
        rows.append(r)
        per_sample_ms = 1000 * r["loop_s"] / r["samples"]
        print(f"{label:<28}{r['batched_s']:>12.3f}{r['loop_s']:>10.3f}{per_sample_ms:>16.2f}"
              f"{r['ratio']:>13.1f}x{r['max_rel_diff']:>14.1e}", flush=True)
    write_json(args.json, dict(benchmark="bench_fisher",
                               command=" ".join(["bench_fisher.py"] + sys.argv[1:]), rows=rows,
                               ratios={f"loop / batched, {r['network']}": r["ratio"] for r in rows}),
               before)


if __name__ == "__main__":
    main()
