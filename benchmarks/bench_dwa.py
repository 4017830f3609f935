"""DWA AlexNet training speed and peak memory: fast masked layers vs the reference formulation.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_dwa.py [--steps 5] [--ref-steps 2]

Paper size: input 3x32x32, mixture heads (8 tasks, 293 classes), batch 32, SGD with momentum, loss
= CE + plasticity + sparsity (paper forms; a random Fisher). Configurations: the plain AlexNet (for
scale); DWA with `masked_impl="fast"` (the fused C kernels of dwa_core/models/kernels where they
apply); "fast" with DWA_CORE_KERNELS=0 (what it falls back to without a compiler: the PyTorch
per-sample Functions, layer and mask losses); and "reference" (per-sample weights materialised for
the whole batch).

Each configuration runs in a fresh subprocess; memory is resource.getrusage(RUSAGE_SELF).ru_maxrss
(the process's peak resident set). `runtime` is the RSS after `import torch` (the interpreter and
PyTorch's libraries, the same for every configuration); `training` = peak - runtime is what the
model, its gradients, the optimiser state, the Fisher and the training steps take."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from dwa_core.functional.dwa_masks import plasticity_loss, sparsity_loss
from dwa_core.models import build
from dwa_core.models.dwa import DWAState
from dwa_core.models.masked import FullMask

MIXTURE = [100, 10, 100, 10, 10, 10, 43, 10]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


RUNTIME_MB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # after importing torch and dwa_core


def measure(arch: str, family: str, params: dict, steps: int, batch: int) -> dict:
    torch.manual_seed(0)
    model = build(arch, family, (3, 32, 32), MIXTURE, params=params)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    fisher = {n: torch.rand_like(p) for n, p in model.named_parameters()
              if n in getattr(model, "masked_weight_names", list)()}
    before = _rss_mb()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x, 1), y)
        if family == "dwa":
            state = model.state
            if params["masked_impl"] == "reference":  # the straightforward loss: materialised masks
                masks = {n: FullMask(m.materialise()) for n, m in state.masks.items()}
                state = DWAState(state.embedding, masks)
            loss = loss + plasticity_loss(state, fisher) + sparsity_loss(state)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step()  # warm-up
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - t0
    return dict(samples_per_s=batch * steps / elapsed, s_per_step=elapsed / steps, first_step_s=first,
                runtime_mb=RUNTIME_MB, rss_before_mb=before, peak_mb=_rss_mb(),
                training_mb=_rss_mb() - RUNTIME_MB)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--ref-steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--only", nargs="*", help="subset of the configurations, by name")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    configs = {"alexnet (plain)": ("alexnet", "plain", {}, args.steps),
               "alexnet-dwa fast": ("alexnet", "dwa", {"masked_impl": "fast"}, args.steps),
               "alexnet-dwa no kernels": ("alexnet", "dwa", {"masked_impl": "fast"}, args.ref_steps),
               "alexnet-dwa reference": ("alexnet", "dwa", {"masked_impl": "reference"}, args.ref_steps)}
    if args.one:
        arch, family, params, steps = configs[args.one]
        print(json.dumps(measure(arch, family, params, steps, args.batch)))
        return
    from dwa_core.models import kernels
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}; "
          f"kernels: {kernels.unavailable_reason() or 'built'}; memory = ru_maxrss of a fresh process")
    results = {}
    for name in args.only or configs:
        env = {**os.environ, **({"DWA_CORE_KERNELS": "0"} if name.endswith("no kernels") else {})}
        out = subprocess.run([sys.executable, __file__, "--one", name, "--steps", str(args.steps),
                              "--ref-steps", str(args.ref_steps), "--batch", str(args.batch)],
                             capture_output=True, text=True, check=True, env=env)
        results[name] = r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name:24s} {r['samples_per_s']:8.1f} samples/s  {r['s_per_step']:7.3f} s/step  "
              f"training {r['training_mb']:6.0f} MB  (peak {r['peak_mb']:.0f} MB, "
              f"runtime {r['runtime_mb']:.0f} MB, after build {r['rss_before_mb']:.0f} MB)", flush=True)
    ref = results.get("alexnet-dwa reference")
    for name in ("alexnet-dwa fast", "alexnet-dwa no kernels"):
        if ref and name in results:
            r = results[name]
            print(f"{name} / reference: {r['samples_per_s'] / ref['samples_per_s']:.1f}x samples/s, "
                  f"{r['training_mb'] / ref['training_mb']:.2f}x training memory")


if __name__ == "__main__":
    main()
