"""The README's "Measured" table, generated from the benchmarks' committed JSON files; and the merging
of benchmarks/gpu_check.sh's step outputs into one JSON file.

    PYTHONPATH=. python benchmarks/measured_table.py                     # print the block
    PYTHONPATH=. python benchmarks/measured_table.py --readme README.md  # rewrite it between the markers
    python benchmarks/measured_table.py --merge-gpu OUT_DIR   # OUT_DIR/gpu-check.json (gpu_check.sh)

CPU rows come from tables/bench-{loop,dwa,fisher,approaches,data}.json and tables/profile-dwa.json
(each benchmark's --json); GPU rows
from tables/gpu-check.json (gpu_check.sh's merged file, copied there by whoever was lent a GPU), and
say "not measured" while it is absent. Every row gives the ratio measured back to back in one process
(the figure to compare across machines) and the machine's load when it ran."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLES = ROOT / "tables"
START, END = "<!-- measured start -->", "<!-- measured end -->"
CPU_FILES = {"loop": "bench-loop.json", "dwa": "bench-dwa.json", "approaches": "bench-approaches.json",
             "data": "bench-data.json", "fisher": "bench-fisher.json", "profile": "profile-dwa.json"}
GPU_FILE = "gpu-check.json"
NO_GPU = "not measured: no GPU was lent to this work"


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _machine(data: dict | None) -> str:
    """The load stated for one JSON file: 1/5/15-minute load averages before and after, CPUs, threads."""
    if not data or "machine" not in data:
        return ""
    after, before = data["machine"], data.get("machine_before")
    load = "/".join(f"{v:.2f}" for v in after["load"])
    if before:
        load = "/".join(f"{v:.2f}" for v in before["load"]) + " before, " + load + " after"
    return f"{after['date']}; load {load} (1/5/15 min); {after['cpus']} CPUs, {after['threads']} threads"


def _cmd(data: dict) -> str:
    return f"`python benchmarks/{data['command']}`"


def _loop_row(data: dict) -> list[str]:
    figs = [f"{r['network']} {r['shape']}: {r['ours']:.0f} / {r['bare']:.0f} samples/s" for r in data["rows"]]
    ratios = [f"{r['network']} {r['ratio']:.3f}" for r in data["rows"]]
    return ["loop overhead vs a bare PyTorch loop (samples/s, ours / bare; best epoch, interleaved)",
            _cmd(data), "; ".join(figs), "ours / bare: " + ", ".join(ratios), _machine(data)]


def _dwa_figures(data: dict, batch: int) -> tuple[str, str]:
    """(absolute figures, ratios) of bench_dwa.py's results at one batch size."""
    figs = []
    for key, r in data["results"].items():
        name, b = key.rsplit(" @ ", 1)
        if int(b) != batch:
            continue
        if "error" in r:
            figs.append(f"{name} failed ({r['error'][:60]})")
        else:
            figs.append(f"{name} {r['samples_per_s']:.1f} samples/s, {r['training_mb']:.0f} MB")
    ratios = [f"{k.rsplit(' @ ', 1)[0].replace('alexnet-dwa ', '')} {v:.2f}"
              for k, v in data["ratios"].items() if k.endswith(f"@ {batch}")]
    rounds = data.get("interleaved", {}).get(str(batch))
    if rounds:  # bench_dwa --rounds: the fast path and the plain AlexNet taking turns in two live processes
        figs.append(f"interleaved, {rounds['rounds']} rounds of {rounds['steps']} steps: fast / plain "
                    f"{rounds['median']:.3f} (median; lowest {rounds['lowest']:.3f}, highest {rounds['highest']:.3f})")
    return "; ".join(figs), ", ".join(ratios)


def _dwa_row(data: dict) -> list[str]:
    figs, ratios = _dwa_figures(data, 32)
    return ["DWA AlexNet at the paper's size (28.8 M parameters), batch 32, training samples/s and memory "
            f"(peak RSS above the runtime); {data['steps']} timed steps ({data['ref_steps']} for the slow "
            f"ones) after {data.get('warmup', 1)} warm-up step(s) (the slow ones: 1)", _cmd(data), figs,
            ratios, _machine(data)]


def _profile_row(data: dict) -> list[str]:
    kept, default = data["step"]["kept"], data["step"]["default"]
    plain, dwa = "alexnet (plain)", "alexnet-dwa fast"
    step = (f"step: plain {kept['ms'][plain]:.1f} ms, DWA {kept['ms'][dwa]:.1f} ms "
            f"({kept['faults'][dwa]:.0f} minor page faults; malloc as it is: "
            f"{default['ms'][dwa]:.1f} ms, {default['faults'][dwa]:.0f} faults)")
    others = [name for name in kept["ms"] if name.startswith(f"{dwa} numerics")]  # the other numerics' step
    step += "".join(f", DWA under numerics {name.rsplit(' ', 1)[-1]} {kept['ms'][name]:.1f} ms"
                    for name in others)
    layers = "each masked layer alone, generator + layer and loss terms: " + ", ".join(
        f"{r['layer'].split(' ')[0]} {r['generator_ms']:.1f} + {r['layer_and_loss_terms_ms']:.1f} ms"
        for r in data["layers"])
    ops = "most self time per step: " + ", ".join(f"{r['op']} {r['ms_per_step']:.1f} ms"
                                                  for r in data["ops"][:6])
    kernels = "2048x2048 rank-1 kernels, ns per mask entry and sample: " + ", ".join(
        f"{r['kernel']} {r['ns_per_entry']:.3f} ({r['threads']} thread{'s' if r['threads'] > 1 else ''})"
        for r in data["kernels"] if "error" not in r)
    ratios = ", ".join(f"{k} {v:.2f}" for k, v in data["ratios"].items())
    return [f"where the DWA AlexNet's training step goes (batch 32; best of {data['repeat']} rounds of "
            f"{data['steps']} steps)", _cmd(data), "; ".join([step, layers, ops, kernels]), ratios,
            _machine(data)]


def _approaches_row(data: dict) -> list[str]:
    figs = [f"{r['approach']} on {r['arch']}: {r['samples_per_s']:.0f} samples/s "
            f"(sgd {r['sgd_samples_per_s']:.0f})"
            for r in data["rows"]]
    ratios = [f"sgd / {r['approach']} ({r['arch']}) {r['cost_vs_sgd']:.2f}" for r in data["rows"]]
    return [f"each approach's training cost vs sgd on the same network (epochs per task: {data['epochs']}, "
            f"{data['tasks']} tasks, best of {data['repeat']} alternated runs)", _cmd(data),
            "; ".join(figs), ", ".join(ratios), _machine(data)]


def _data_row(data: dict) -> list[str]:
    figs = [f"{r['benchmark']} {r['build_s']:.1f} s / {r['reload_s']:.1f} s" for r in data["rows"]]
    mem = data["mixture_gib"]
    figs.append(f"full mixture {mem['uint8 as stored']:.2f} GiB as stored (uint8), "
                f"{mem['uint8 3x32x32']:.2f} GiB uint8 at 3x32x32 vs "
                f"{mem['float32 3x32x32']:.2f} GiB float32")
    ratios = [f"{r['benchmark']} {r['ratio']:.1f}" for r in data["rows"]]
    return ["data: build / reload from cache", _cmd(data), "; ".join(figs),
            "build / reload: " + ", ".join(ratios), _machine(data)]


def _fisher_row(data: dict) -> list[str]:
    figs = [f"{r['network']}: {r['batched_s']:.3f} s / {r['loop_s']:.3f} s for {r['samples']} samples "
            f"(loop {1000 * r['loop_s'] / r['samples']:.1f} ms/sample; "
            f"max rel. difference {r['max_rel_diff']:.0e})"
            for r in data["rows"]]
    ratios = [f"{r['network']} {r['ratio']:.1f}" for r in data["rows"]]
    return ["per-sample Fisher (plain networks: every parameter, EWC's criterion; -dwa: the masked weights, "
            "DWA's criterion), seconds: batched (one backward per batch) / loop (one backward per sample)",
            _cmd(data), "; ".join(figs),
            "loop / batched: " + ", ".join(ratios), _machine(data)]


def _gpu_rows(gpu: dict | None) -> list[list[str]]:
    """The three GPU rows: bench_dwa.py on CUDA, the equivalence check, the mixture projection."""
    script = "`bash benchmarks/gpu_check.sh`"
    name = (gpu or {}).get("gpu") or {}
    where = f"{name.get('name', 'GPU')} ({name.get('memory', '?')})" if gpu else ""
    bench_row = ["DWA AlexNet on a GPU at the paper's size, batches 32 and 256: samples/s and peak GPU "
                 "memory (`torch.cuda.max_memory_allocated`)",
                 f"`python benchmarks/bench_dwa.py --device cuda`, or {script}"]
    equiv_row = ["the CUDA path against the float64 reference on the GPU (paper-size network: output, mask "
                 "losses, every gradient)", "`python benchmarks/cuda_equivalence.py --device cuda`"]
    proj_row = ["DWA (`final-warm`) on mixture-offline on a GPU, and the paper's full mixture run projected "
                "from the measured per-epoch times", f"{script} (`python -m dwa_core run ... --device cuda`, "
                "then `python benchmarks/project_mixture.py`)"]
    if not gpu:
        return [bench_row + [NO_GPU, "", ""],
                equiv_row + ["not measured (on the CPU: tests/test_cuda_path.py)", "", ""],
                proj_row + ["not measured", "", ""]]
    steps = gpu.get("steps", {})
    bench = gpu.get("bench")
    if bench and bench.get("results"):
        parts = [_dwa_figures(bench, b) for b in (32, 256)]
        bench_row += [f"{where}: batch 32: {parts[0][0]}; batch 256: {parts[1][0]}",
                      f"batch 32: {parts[0][1]}; batch 256: {parts[1][1]}", _machine(bench)]
    else:
        bench_row += [f"{where}: failed ({_step_end(steps.get('bench'))})", "", ""]
    equiv = steps.get("equivalence")
    equiv_row += [f"{where}: " + ("; ".join(equiv["tail"][-4:]) if equiv else "not run"), "", ""]
    proj = steps.get("projection")
    proj_row += [f"{where}: " + ("; ".join(proj["tail"][-2:]) if proj else "not run"), "", ""]
    return [bench_row, equiv_row, proj_row]


def _step_end(step: dict | None) -> str:
    return "not run" if not step else f"exit {step['exit']} after {step['seconds']} s"


def markdown(tables: Path = TABLES) -> str:
    """The block between the README's markers, from the JSON files in `tables` (see the module)."""
    data = {key: _load(tables / name) for key, name in CPU_FILES.items()}
    rows = []
    for key, build in (("loop", _loop_row), ("dwa", _dwa_row), ("profile", _profile_row)):
        rows.append(build(data[key]) if data[key] else [key, "", "not measured", "", ""])
    rows += _gpu_rows(_load(tables / GPU_FILE))
    for key, build in (("fisher", _fisher_row), ("approaches", _approaches_row), ("data", _data_row)):
        rows.append(build(data[key]) if data[key] else [key, "", "not measured", "", ""])
    head = ["what", "command", "figure", "ratio (same process, back to back)", "when, machine load"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    note = ("Generated by `python benchmarks/measured_table.py --readme README.md` from "
            f"`tables/bench-*.json` and `tables/{GPU_FILE}` (GPU rows; absent: not measured). "
            "Absolute figures move with the machine's load; the ratios, measured back to back in one "
            "process, much less.")
    return note + "\n\n" + "\n".join(lines)


def rewrite_readme(path: Path, block: str) -> None:
    """Replace what lies between START and END in `path` with `block`."""
    text = path.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{path}: no {START} ... {END} block")
    head, rest = text.split(START, 1)
    path.write_text(f"{head}{START}\n{block}\n{END}{rest.split(END, 1)[1]}")


def _step(path: Path) -> dict | None:
    """One gpu_check.sh step file (`== NAME: COMMAND`, output, `== NAME: exit RC after S s`):
    {"exit", "seconds", "tail": its last output lines}; exit None when the step did not finish."""
    if not path.exists():
        return None
    lines = path.read_text().splitlines()
    body = [line for line in lines[1:] if not line.startswith("== ")]
    end = re.match(r"== \S+: exit (\d+) after (\d+) s", lines[-1]) if lines else None
    return dict(exit=int(end[1]) if end else None, seconds=int(end[2]) if end else None, tail=body[-12:])


def merge_gpu(out_dir: Path) -> dict:
    """Merge gpu_check.sh's outputs in `out_dir` into one dict, written to out_dir/gpu-check.json:
    the GPU's name (nvidia-smi's CSV), each step's exit status, seconds and last lines,
    bench_dwa.py's JSON (bench.json) whole, and the code's numerics identity."""
    steps = {p.stem: _step(p) for p in sorted(out_dir.glob("*.txt"))}
    gpu = None
    smi = steps.get("gpu")
    rows = [line for line in (smi or {}).get("tail", []) if "," in line and not line.startswith("name")]
    if rows:
        name, memory, driver = (cell.strip() for cell in (rows[0].split(",") + ["", ""])[:3])
        gpu = dict(name=name, memory=memory, driver=driver)
    bench = _load(out_dir / "bench.json")
    from dwa_core import numerics  # tables/*.json record their numerics (test_numerics.py)
    merged = dict(gpu=gpu, steps=steps, bench=bench, ok=all(s and s["exit"] == 0 for s in steps.values()),
                  numerics=numerics.identity())
    (out_dir / GPU_FILE).write_text(json.dumps(merged, indent=1) + "\n")
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", help="rewrite this file's measured block instead of printing it")
    parser.add_argument("--tables", default=str(TABLES), help="the folder of the JSON files")
    parser.add_argument("--merge-gpu", metavar="OUT_DIR", help="write OUT_DIR/gpu-check.json and stop")
    args = parser.parse_args()
    if args.merge_gpu:
        merged = merge_gpu(Path(args.merge_gpu))
        print(f"wrote {Path(args.merge_gpu) / GPU_FILE} (all steps ok: {merged['ok']}); for the README: "
              f"cp it to tables/{GPU_FILE}, then python benchmarks/measured_table.py --readme README.md")
        return
    block = markdown(Path(args.tables))
    if args.readme:
        rewrite_readme(Path(args.readme), block)
    else:
        print(block)


if __name__ == "__main__":
    main()
