"""Where the DWA AlexNet's training step spends its time on the CPU: per masked layer (its mask
generator, the layer and its mask loss terms), per op, and the fused rank-1 kernels per mask entry
at 1 and 2 threads.

    PYTHONPATH=. python benchmarks/profile_dwa.py [--steps 5] [--repeat 3] [--json tables/profile-dwa.json]

The set-up is bench_dwa.py's: the paper's size (input 3x32x32, the mixture's 8 heads), batch 32, SGD
without momentum, loss = CE + plasticity + sparsity (paper forms, a random Fisher), masked_impl
"fast", in one process. Sections, each timed after warm-up as the best of --repeat rounds of --steps
iterations (the rounds of a section alternate its items, so a transient load hits them alike):

    step     one training step of the plain AlexNet and of the DWA AlexNet (under this process's
             numerics and the other selectable one: dwa_core/numerics.py), the ratios and the
             minor page faults per step, in two fresh processes: malloc keeping freed memory
             (dwa_core.allocator.keep_freed_memory, as in the program and the sweep workers) and
             malloc as it is (DWA_CORE_MALLOC=default); each twice, alternated, keeping the best.
    layers   each masked layer of the DWA AlexNet alone, forward + backward, on the inputs it gets
             in the network (captured from one forward): its generator alone (embedding -> mask,
             backward from a random gradient of the mask), then generator + layer + the layer's
             plasticity and sparsity terms (backward from a random gradient of the output plus the
             terms, each mask holding the Fisher as in training, so that the layer's pass computes
             the plasticity term); "layer and loss terms" = the second minus the first. Under
             numerics 5 a conv mask's generator alone gates its mask in a pass of its own, which in
             the second the layer does within its product's pass: the difference then leaves out
             the gating. Alone, a layer's allocations are not those it meets in the step: the layers
             do not add up to the step.
    ops      torch.profiler over --steps DWA steps: the ops with the most self CPU time, ms per step.
    kernels  the fused C kernels of the largest rank-1 layer (fc2, 2048x2048) called directly,
             nanoseconds per mask entry and sample, at 1 and at 2 threads, under both numerics.

The sections after "step" run in this process, with malloc keeping freed memory. No target is
asserted here; the README's "Measured" table shows the committed file
(benchmarks/measured_table.py)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch
from _machine import machine, write_json
from bench_dwa import training_step

from dwa_core import allocator, numerics
from dwa_core.functional.dwa_masks import plasticity_loss, sparsity_loss
from dwa_core.models import kernels
from dwa_core.models.dwa import DWAState
from dwa_core.models.masked import RankOneMask

BATCH = 32
OTHER = numerics.other()  # the numerics measured beside this process's (dwa_core/numerics.py)
OTHER_STEP = f"alexnet-dwa fast numerics {OTHER}"


def _under_other(fn):
    """fn run under the other selectable numerics (OTHER; dwa_core/numerics.py)."""
    def run():
        with numerics.using(OTHER):
            fn()
    return run


def _best_ms(items: dict, steps: int, repeat: int) -> dict:
    """{name: best over `repeat` rounds of the mean ms of `steps` calls}; the rounds alternate the
    items, each called once before as a warm-up."""
    for fn in items.values():
        fn()
    best = {}
    for _ in range(repeat):
        for name, fn in items.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            ms = 1000 * (time.perf_counter() - t0) / steps
            best[name] = min(ms, best.get(name, ms))
    return best


def _trainer(family: str):
    """(model, one training step, the random Fisher, the inputs): bench_dwa.py's step on the CPU."""
    params = {"masked_impl": "fast"} if family == "dwa" else {}
    return training_step("alexnet", family, params, BATCH, torch.device("cpu"))


def _layer_inputs(model, x) -> dict:
    """{layer name: the input it gets in the network} from one forward, and "embedding": E."""
    seen = {}
    hooks = [getattr(model, s.name).register_forward_pre_hook(
        lambda _m, args, name=s.name: seen.__setitem__(name, args[0].detach().clone()))
        for s in model.specs[model.stem:]]
    with torch.no_grad():
        model(x, 1)
    for hook in hooks:
        hook.remove()
    seen["embedding"] = model.state.embedding.detach().clone()
    return seen


def _layer_items(model, fisher, inputs) -> dict:
    """Two timed callables per masked layer: its generator alone, and generator + layer + loss terms."""
    items = {}
    e = inputs["embedding"].requires_grad_()
    for spec in model.specs[model.stem:]:
        name, weight_name = spec.name, f"{spec.name}.weight"
        layer, generator, f = getattr(model, name), model.generators[name], fisher[weight_name]
        x = inputs[name].requires_grad_()
        with torch.no_grad():
            probe = generator(e, model.gate)
            gy = torch.randn_like(layer(x, probe))
        parts = ((probe.u, probe.v) if isinstance(probe, RankOneMask) else (probe.h,))
        g_parts = [torch.randn_like(p) for p in parts]

        def generator_only(generator=generator, g_parts=g_parts):
            mask = generator(e, model.gate)
            outs = (mask.u, mask.v) if isinstance(mask, RankOneMask) else (mask.h,)
            torch.autograd.backward(outs, g_parts)

        def whole(generator=generator, layer=layer, x=x, f=f, gy=gy, weight_name=weight_name):
            mask = generator(e, model.gate)
            mask.relu_weight = f  # as DWANet.forward: the layer's own pass computes the plasticity term
            out = layer(x, mask)
            state = DWAState(e, {weight_name: mask})
            loss = (out * gy).sum() + plasticity_loss(state, {weight_name: f}) + sparsity_loss(state)
            loss.backward()

        kind = "rank-1" if isinstance(probe, RankOneMask) else "full mask"
        label = f"{name} ({spec.kind} {tuple(layer.weight.shape)}, {kind})"
        items[(label, "generator")] = generator_only
        items[(label, "whole")] = whole
    return items


def _kernel_rows(steps: int, repeat: int) -> list[dict]:
    """ns per mask entry and sample of the fused forward and backward of a 2048x2048 rank-1 layer."""
    if kernels.rank_one() is None:
        return [dict(error=kernels.unavailable_reason())]
    torch.manual_seed(0)
    n_out = n_in = 2048
    x, w = torch.randn(BATCH, n_in), torch.randn(n_out, n_in) * 0.02
    u, v, f = torch.randn(BATCH, n_out), torch.randn(BATCH, n_in), torch.rand(n_out, n_in)
    gy, gs, gr = torch.randn(BATCH, n_out), torch.randn(BATCH), torch.randn(BATCH)
    entries = BATCH * n_out * n_in
    rows, threads = [], torch.get_num_threads()
    forward = (lambda: kernels.linear_forward(x, w, u, v, "tanh", f))
    backward = (lambda: kernels.linear_backward(x, w, u, v, gy, gs, "tanh", f, gr))
    other = f"numerics {OTHER}"
    for n in sorted({1, threads}):
        torch.set_num_threads(n)
        ms = _best_ms({"forward": forward, "backward": backward, f"forward {other}": _under_other(forward),
                       f"backward {other}": _under_other(backward)}, steps, repeat)
        rows += [dict(kernel=k, threads=n, ms=t, ns_per_entry=1e6 * t / entries) for k, t in ms.items()]
    torch.set_num_threads(threads)
    return rows


def _op_rows(step, steps: int, top: int) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [dict(op=e.key, ms_per_step=e.self_cpu_time_total / 1000 / steps, calls_per_step=e.count / steps,
                 share=e.self_cpu_time_total / total) for e in events[:top]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--top", type=int, default=12, help="ops listed")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--step-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step_only:  # a child: the step section in this process's malloc setting
        kept = allocator.keep_freed_memory()
        steps = {"alexnet (plain)": _trainer("plain")[1], "alexnet-dwa fast": _trainer("dwa")[1],
                 OTHER_STEP: _under_other(_trainer("dwa")[1])}
        best = _best_ms(steps, args.steps, args.repeat)
        faults = {}
        for name, fn in steps.items():
            start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(args.steps):
                fn()
            faults[name] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / args.steps
        print(json.dumps(dict(malloc="kept" if kept else "default", ms=best, faults=faults)))
        return
    before = machine()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {BATCH}; "
          f"kernels: {kernels.unavailable_reason() or 'built'}", flush=True)
    step = {}
    for _ in range(2):
        for malloc in ("kept", "default"):
            env = {**os.environ, "DWA_CORE_MALLOC": "default" if malloc == "default" else ""}
            out = subprocess.run([sys.executable, __file__, "--step-only", "--steps", str(args.steps),
                                  "--repeat", str(args.repeat)], capture_output=True, text=True, env=env,
                                 check=True)
            child = json.loads(out.stdout.strip().splitlines()[-1])
            if child["malloc"] != malloc:
                raise SystemExit(f"malloc {malloc} asked, {child['malloc']} got (not glibc?)")
            old = step.get(malloc)
            if old is None or child["ms"]["alexnet-dwa fast"] < old["ms"]["alexnet-dwa fast"]:
                step[malloc] = child
    for malloc, r in step.items():
        for name, ms in r["ms"].items():
            print(f"step  malloc {malloc:7s} {name:20s} {ms:7.1f} ms  {r['faults'][name]:7.0f} minor faults")
        r["dwa / plain samples/s"] = r["ms"]["alexnet (plain)"] / r["ms"]["alexnet-dwa fast"]
        other_ratio = r[f"dwa numerics {OTHER} / plain samples/s"] = (r["ms"]["alexnet (plain)"]
                                                                     / r["ms"][OTHER_STEP])
        print(f"step  malloc {malloc:7s} DWA / plain samples/s {100 * r['dwa / plain samples/s']:.0f} %, "
              f"under numerics {OTHER} {100 * other_ratio:.0f} %")
    kept_gain = step["default"]["ms"]["alexnet-dwa fast"] / step["kept"]["ms"]["alexnet-dwa fast"]
    print(f"step  DWA step, malloc default / kept: {kept_gain:.3f}x")

    allocator.keep_freed_memory()
    model, dwa_step, fisher, x = _trainer("dwa")
    timed = _best_ms(_layer_items(model, fisher, _layer_inputs(model, x)), args.steps, args.repeat)
    layers = []
    for label in dict.fromkeys(label for label, _ in timed):
        whole, gen = timed[(label, "whole")], timed[(label, "generator")]
        layers.append(dict(layer=label, ms=whole, generator_ms=gen, layer_and_loss_terms_ms=whole - gen))
        print(f"layer {label:42s} {whole:6.1f} ms  (generator {gen:5.1f}, layer and loss terms "
              f"{whole - gen:5.1f})")

    ops = _op_rows(dwa_step, args.steps, args.top)
    for r in ops:
        print(f"op    {r['op'][:40]:40s} {r['ms_per_step']:7.1f} ms/step  {100 * r['share']:4.1f} %  "
              f"{r['calls_per_step']:.0f} calls")

    kernel_rows = _kernel_rows(args.steps, args.repeat)
    for r in kernel_rows:
        if "error" in r:
            print(f"kernels unavailable: {r['error']}")
        else:
            print(f"kernel 2048x2048 {r['kernel']:19s} {r['threads']} thread(s) {r['ms']:6.1f} ms  "
                  f"{r['ns_per_entry']:.3f} ns per mask entry and sample")
    speedups = {}
    by = {(r["kernel"], r["threads"]): r["ms"] for r in kernel_rows if "error" not in r}
    for kernel in ("forward", "backward", *(f"{k} numerics {OTHER}" for k in ("forward", "backward"))):
        if (kernel, 1) in by and (kernel, 2) in by:
            speedups[f"kernel {kernel}: 1 thread / 2 threads"] = by[(kernel, 1)] / by[(kernel, 2)]
    for key, value in speedups.items():
        print(f"{key} {value:.2f}x")
    write_json(args.json, dict(benchmark="profile_dwa", command=" ".join(["profile_dwa.py"] + sys.argv[1:]),
                               steps=args.steps, repeat=args.repeat, batch=BATCH, step=step,
                               layers=layers, ops=ops, kernels=kernel_rows,
                               ratios={"dwa / plain samples/s": step["kept"]["dwa / plain samples/s"],
                                       f"dwa numerics {OTHER} / plain samples/s":
                                           step["kept"][f"dwa numerics {OTHER} / plain samples/s"],
                                       "dwa step, malloc default / kept": kept_gain, **speedups}), before)


if __name__ == "__main__":
    main()
