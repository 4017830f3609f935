"""DWA AlexNet training speed and peak memory: fast masked layers vs the reference formulation.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_dwa.py [--steps 5] [--ref-steps 2] [--repeat 2]
        [--rounds R] [--only NAME ...] [--json FILE]
    PYTHONPATH=. python benchmarks/bench_dwa.py --device cuda            # batches 32 and 256

Paper size: input 3x32x32, mixture heads (8 tasks, 293 classes), batch 32 (the paper's), plain SGD
as the training loop makes it (Approach.make_optimizer: no momentum), loss = CE + plasticity +
sparsity (paper forms; a random Fisher). Configurations:

    alexnet (plain)          the plain AlexNet, for scale
    alexnet-dwa fast         masked_impl="fast": the fused C kernels on the CPU, the Triton
                             operators on CUDA (dwa_core/models/kernels)
    alexnet-dwa fast numerics N
                             the same under the other selectable numerics (dwa_core/numerics.py):
                             3 while 5 is the default (3 is 5 without tanh_exp2, the four rows per
                             pass and the full (conv) masks' gate, product and loss statistics in
                             C), 5 under DWA_CORE_NUMERICS=3 (the twin of this process's own
                             numerics is left out)
    alexnet-dwa per-sample   what "fast" was without them: the PyTorch Functions that walk the
                             batch one sample at a time (DWA_CORE_KERNELS=0, DWA_CORE_RANK_ONE=none)
    alexnet-dwa reference    per-sample weights materialised for the whole batch
    alexnet-dwa compiled     the operators computed by torch.compile of the straightforward
                             formulation (DWA_CORE_RANK_ONE=compiled); on CUDA by default, on the
                             CPU with --only (Inductor's C++; slow to compile)

Each configuration runs in a fresh subprocess, whose malloc keeps freed memory for reuse as the
program's and the sweep workers' do (dwa_core/allocator.py; DWA_CORE_MALLOC=default: as it is),
--warmup steps (the slow configurations: 1) before the timed ones. CPU memory is
resource.getrusage's ru_maxrss (the process's peak resident set): `runtime` is the RSS after
`import torch` (the same for every configuration) and `training` = peak - runtime. CUDA memory is
torch.cuda.max_memory_allocated (peak of the whole run: model, gradients, optimiser state, Fisher,
activations); `after build` is what was allocated before the first step. Times on CUDA are taken
after torch.cuda.synchronize().

The ratios printed (each DWA configuration's samples/s / the plain AlexNet's and / the reference's)
are what to compare across machines; with --repeat N the configurations run N times in turn and each
keeps its fastest run, so a transient load on one of them does not skew a ratio. The fastest runs of
two configurations may still come from different moments of a machine whose speed drifts (the plain
AlexNet's step here ran at 55 to 75 ms over one afternoon): --rounds R also times the fast path and
the plain AlexNet in two live processes taking turns, R rounds of --steps steps each, and reports the
median of the R per-round ratios with the lowest and the highest (`interleaved`). --json FILE writes
the results, the ratios and the machine's load (benchmarks/measured_table.py reads it)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from _machine import machine, write_json

from dwa_core import numerics
from dwa_core.functional.dwa_masks import plasticity_loss, sparsity_loss

try:
    from dwa_core.allocator import keep_freed_memory
except ImportError:  # PYTHONPATH on a library from before allocator.py: malloc as it is
    def keep_freed_memory() -> bool:
        return False
from dwa_core.models import build
from dwa_core.models.dwa import DWAState
from dwa_core.models.masked import FullMask

MIXTURE = [100, 10, 100, 10, 10, 10, 43, 10]
PER_SAMPLE_ENV = {"DWA_CORE_KERNELS": "0", "DWA_CORE_RANK_ONE": "none"}
CONFIGS = {  # name: (arch, family, params, environment, uses --ref-steps)
    "alexnet (plain)": ("alexnet", "plain", {}, {}, False),
    "alexnet-dwa fast": ("alexnet", "dwa", {"masked_impl": "fast"}, {}, False),
    **{f"alexnet-dwa fast numerics {v}": ("alexnet", "dwa", {"masked_impl": "fast"}, {numerics.ENV: str(v)},
                                          False) for v in numerics.SELECTABLE},
    "alexnet-dwa per-sample": ("alexnet", "dwa", {"masked_impl": "fast"}, PER_SAMPLE_ENV, True),
    "alexnet-dwa reference": ("alexnet", "dwa", {"masked_impl": "reference"}, {}, True),
    "alexnet-dwa compiled": ("alexnet", "dwa", {"masked_impl": "fast"}, {"DWA_CORE_RANK_ONE": "compiled"},
                             False),
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


RUNTIME_MB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # after importing torch and dwa_core


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _memory(device: torch.device, before: float) -> dict:
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        return dict(peak_mb=peak, after_build_mb=before, training_mb=peak - before)
    peak = _rss_mb()
    return dict(runtime_mb=RUNTIME_MB, rss_before_mb=before, peak_mb=peak, training_mb=peak - RUNTIME_MB)


def training_step(arch: str, family: str, params: dict, batch: int, device: torch.device):
    """(model, step, fisher, x): the network built with seed 0, random inputs, a random Fisher handed
    to the DWA network as the approach does, and one training step of SGD on CE + plasticity +
    sparsity (see the module); benchmarks/profile_dwa.py times the same step."""
    torch.manual_seed(0)
    model = build(arch, family, (3, 32, 32), MIXTURE, params=params).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)  # as the loop: Approach.make_optimizer
    x, y = torch.randn(batch, 3, 32, 32, device=device), torch.randint(0, 10, (batch,), device=device)
    fisher = {n: torch.rand_like(p) for n, p in model.named_parameters()
              if n in getattr(model, "masked_weight_names", list)()}
    if family == "dwa":  # as the DWA approach does after each task: the fused layers use F
        model.plasticity_weights = fisher

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

    return model, step, fisher, x


def measure(arch: str, family: str, params: dict, steps: int, batch: int, device: str = "cpu",
            warmup: int = 1) -> dict:
    """samples/s over `steps` training steps after `warmup` warm-up steps (at least one), and memory
    (see the module); first_step_s is the first warm-up step's time."""
    device = torch.device(device)
    _, step, _, _ = training_step(arch, family, params, batch, device)
    before = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else _rss_mb()

    t0 = time.perf_counter()
    step()  # warm-up (and, on CUDA, Triton / Inductor compilation)
    _sync(device)
    first = time.perf_counter() - t0
    for _ in range(warmup - 1):  # the allocator settles on its thresholds over the first steps
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    elapsed = time.perf_counter() - t0
    return dict(samples_per_s=batch * steps / elapsed, s_per_step=elapsed / steps, first_step_s=first,
                **_memory(device, before))


def _report(name: str, r: dict, device: str) -> str:
    speed = f"{name:24s} {r['samples_per_s']:8.1f} samples/s  {r['s_per_step']:7.3f} s/step  "
    if device == "cuda":
        return speed + (f"peak {r['peak_mb']:7.0f} MB allocated  (after build {r['after_build_mb']:.0f} MB, "
                        f"first step {r['first_step_s']:.1f} s)")
    return speed + (f"training {r['training_mb']:6.0f} MB  (peak {r['peak_mb']:.0f} MB, "
                    f"runtime {r['runtime_mb']:.0f} MB, after build {r['rss_before_mb']:.0f} MB)")


def _header(device: str, batches) -> str:
    from dwa_core.models import kernels
    head = (f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
            f"batch {', '.join(map(str, batches))}")
    if device == "cuda":
        import triton
        props = torch.cuda.get_device_properties(0)
        return (f"{head}; GPU: {torch.cuda.get_device_name(0)} ({props.total_memory / 2**30:.0f} GiB), "
                f"CUDA {torch.version.cuda}, triton {triton.__version__}; "
                "memory = torch.cuda.max_memory_allocated")
    kernel_state = kernels.unavailable_reason() or "built"
    return f"{head}; kernels: {kernel_state}; memory = ru_maxrss of a fresh process"


def run_one(name: str, args, batch: int) -> dict:
    """`measure` for one configuration in a fresh subprocess with its environment variables;
    {"error": the last line of its stderr} if it fails."""
    env = {**os.environ, **CONFIGS[name][3]}
    out = subprocess.run([sys.executable, __file__, "--one", name, "--steps", str(args.steps),
                          "--warmup", str(1 if CONFIGS[name][4] else args.warmup),
                          "--ref-steps", str(args.ref_steps), "--batch", str(batch), "--device", args.device],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:  # e.g. out of memory: report it, go on with the others
        return dict(error=(out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _compare(results: dict, names, batch: int) -> dict:
    """Each DWA configuration against the reference (speed, memory) and the plain AlexNet (speed),
    printed and returned as {"<name> / reference @ <batch>": samples/s ratio, "<name> / plain @ ...": ...};
    the configurations run back to back, so a loaded machine still gives comparable ratios."""
    ratios = {}
    ref = results.get(f"alexnet-dwa reference @ {batch}", {})
    plain = results.get(f"alexnet (plain) @ {batch}", {})
    for name in names:
        r = results[f"{name} @ {batch}"]
        if not name.startswith("alexnet-dwa") or "error" in r:
            continue
        if "samples_per_s" in ref and ref is not r:
            ratios[f"{name} / reference @ {batch}"] = r["samples_per_s"] / ref["samples_per_s"]
            print(f"batch {batch:4d} {name} / reference: {r['samples_per_s'] / ref['samples_per_s']:.1f}x "
                  f"samples/s, {r['training_mb'] / ref['training_mb']:.2f}x training memory")
        if "samples_per_s" in plain:
            ratios[f"{name} / plain @ {batch}"] = r["samples_per_s"] / plain["samples_per_s"]
            print(f"batch {batch:4d} {name} / plain AlexNet: "
                  f"{100 * r['samples_per_s'] / plain['samples_per_s']:.0f} % samples/s")
    return ratios


def serve(name: str, batch: int, warmup: int, device: str = "cpu") -> None:
    """A worker of `interleaved`: builds the configuration, runs `warmup` steps, prints "ready", then for
    each line N read from stdin runs N steps and prints their seconds; ends at end of input."""
    arch, family, params, _, _ = CONFIGS[name]
    _, step, _, _ = training_step(arch, family, params, batch, torch.device(device))
    for _ in range(max(1, warmup)):
        step()
    _sync(torch.device(device))
    print("ready", flush=True)
    for line in sys.stdin:
        t0 = time.perf_counter()
        for _ in range(int(line)):
            step()
        _sync(torch.device(device))
        print(time.perf_counter() - t0, flush=True)


def interleaved(names: list[str], rounds: int, steps: int, batch: int, warmup: int,
                device: str) -> dict[str, list[float]]:
    """{name: seconds per step of each round}: one live worker process per configuration (`serve`, malloc
    set as in training), taking turns: round r runs `steps` steps of each in turn, so that the
    configurations of a round meet the same machine, and a ratio per round does not mix moments."""
    workers = {name: subprocess.Popen([sys.executable, __file__, "--serve", name, "--batch", str(batch),
                                       "--warmup", str(warmup), "--device", device],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                      env={**os.environ, **CONFIGS[name][3]})
               for name in names}
    try:
        for name, worker in workers.items():  # built and warmed up, one after the other
            if worker.stdout.readline().strip() != "ready":
                raise RuntimeError(f"bench_dwa: the {name} worker failed (exit status {worker.wait()})")
        times = {name: [] for name in names}
        for _ in range(rounds):
            for name, worker in workers.items():
                worker.stdin.write(f"{steps}\n")
                worker.stdin.flush()
                times[name].append(float(worker.stdout.readline()) / steps)
        return times
    finally:
        for worker in workers.values():
            worker.stdin.close()
            worker.wait()


def _interleaved_ratios(args, batch: int) -> dict:
    """The DWA fast path's samples/s / the plain AlexNet's, round by round (`interleaved`): the median,
    the lowest and the highest of --rounds rounds, printed and returned with the rounds' seconds."""
    plain, fast = "alexnet (plain)", "alexnet-dwa fast"
    times = interleaved([plain, fast], args.rounds, args.steps, batch, args.warmup, args.device)
    per_round = [p / f for p, f in zip(times[plain], times[fast])]
    median = statistics.median(per_round)
    print(f"batch {batch:4d} alexnet-dwa fast / plain AlexNet, interleaved: median {100 * median:.1f} % samples/s "
          f"over {args.rounds} rounds of {args.steps} steps (lowest {100 * min(per_round):.1f} %, highest "
          f"{100 * max(per_round):.1f} %); step {1000 * statistics.median(times[plain]):.1f} ms plain, "
          f"{1000 * statistics.median(times[fast]):.1f} ms DWA (medians)", flush=True)
    return dict(median=median, lowest=min(per_round), highest=max(per_round), rounds=args.rounds,
                steps=args.steps, seconds_per_step=times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3,
                        help="warm-up steps before the timed ones (the slow configurations: 1)")
    parser.add_argument("--ref-steps", type=int, default=2)
    parser.add_argument("--batch", type=int, nargs="+", help="default: 32 on the CPU, 32 and 256 on CUDA")
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", nargs="*", help="subset of the configurations, by name")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the configurations this many times in turn and keep each one's fastest")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--rounds", type=int, default=0,
                        help="also measure the fast path against the plain AlexNet in this many interleaved "
                             "rounds of --steps steps, in two live processes (see `interleaved`)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    batches = args.batch or ([32, 256] if args.device == "cuda" else [32])
    if args.serve:  # a live worker of `interleaved`, with malloc set as dwa_core's training processes set it
        keep_freed_memory()
        serve(args.serve, batches[0], args.warmup, args.device)
        return
    if args.one:  # a fresh process per configuration, with malloc set as dwa_core's training processes set it
        keep_freed_memory()
        arch, family, params, _, slow = CONFIGS[args.one]
        print(json.dumps(measure(arch, family, params, args.ref_steps if slow else args.steps, batches[0],
                                 args.device, max(1, args.warmup))))
        return
    # the CPU leaves out the compiled operators (slow to build); CUDA the other numerics (3 and 5 differ
    # on the CPU only); "fast" runs this process's numerics, so its "numerics N" twin is left out
    names = args.only or [n for n in CONFIGS if n != f"alexnet-dwa fast numerics {numerics.VERSION}"
                          and (not n.endswith("compiled") if args.device == "cpu" else "numerics" not in n)]
    print(_header(args.device, batches), flush=True)
    before = machine()
    results, ratios, rounds = {}, {}, {}
    for batch in batches:
        for _ in range(args.repeat):  # the configurations alternate: each sees the same machine load
            for name in names:
                r = run_one(name, args, batch)
                print(f"batch {batch:4d} " + (_report(name, r, args.device) if "error" not in r
                                              else f"{name:24s} failed: {r['error']}"), flush=True)
                best = results.get(f"{name} @ {batch}")
                if best is None or r.get("samples_per_s", 0) > best.get("samples_per_s", 0):
                    results[f"{name} @ {batch}"] = r  # the fastest of the repeats
        ratios.update(_compare(results, names, batch))
        if args.rounds:
            rounds[batch] = _interleaved_ratios(args, batch)
            ratios[f"alexnet-dwa fast / plain, interleaved median @ {batch}"] = rounds[batch]["median"]
    write_json(args.json, dict(benchmark="bench_dwa", command=" ".join(["bench_dwa.py"] + sys.argv[1:]),
                               header=_header(args.device, batches), steps=args.steps, warmup=args.warmup,
                               repeat=args.repeat, ref_steps=args.ref_steps, results=results, ratios=ratios,
                               interleaved=rounds), before)


if __name__ == "__main__":
    main()
