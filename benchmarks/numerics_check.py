"""Does the other selectable numerics change an approach's results? The chosen point of a committed
comparison, trained again on its reported seeds under the other numerics (dwa_core/numerics.py:
numerics 5 while 3 is the default), against the committed per-seed test figures: the paired
differences of the final average accuracy, backward transfer and forgetting, with their 95 %
Student-t interval (scipy).

    PYTHONPATH=. python benchmarks/numerics_check.py [--comparison compare-permuted-fmnist]
        [--approach dwa] [--workers 2] [--output-dir results/numerics-check] [--json FILE]

Why: a new numerics is judged by what it does to the numbers, not only by its kernels' errors. A
rational tanh within 1e-6 of tanh passed every kernel test of its time and still moved DWA's
permuted-fmnist score far beyond seed noise (its 1 - H² was biased in saturation); this check would
have shown it before the regeneration. The runs go to --output-dir under their own numerics'
folder names and are reused when rerun. The committed comparison must be of this process's numerics
(else the figures it holds are not the ones to compare with); a check whose interval excludes 0 is
printed as such, nothing is asserted."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from _machine import machine, write_json
from scipy import stats

from dwa_core import compare, metrics, numerics
from dwa_core.experiment import load_run
from dwa_core.runs import run_dir
from dwa_core.sweep.execute import run_sweep

ROOT = Path(__file__).resolve().parents[1]
MEASURES = {"avg_acc": metrics.average_accuracy, "bwt": metrics.backward_transfer,
            "forgetting": metrics.forgetting}


def chosen_configs(name: str, approach: str) -> tuple[list, dict]:
    """(the configs of `approach`'s chosen point on the comparison's reported seeds, its data row)
    from the comparison's definition and committed data file. Raises SystemExit when the data file
    is of other numerics or the chosen point is not one of the definition's candidates."""
    path = ROOT / "tables" / f"{name}.json"
    data = compare.read_data(path)
    changed = numerics.mismatch(data.get("numerics"))
    if changed:
        raise SystemExit(f"{path.relative_to(ROOT)}: {changed}; regenerate it before checking the other "
                         f"numerics")
    comp = compare.load_comparison(name)
    row = next((r for r in data["rows"] if r["approach"] == approach), None)
    if row is None:
        raise SystemExit(f"{name}: no row of approach {approach!r}")
    try:
        chosen = compare.chosen_point(comp, row)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    return [chosen.replace(seed=s) for s in row["seeds"]], row


def paired(new: list[float], committed: list[float]) -> dict:
    """{"mean", "ci95", "per_seed"} of new - committed, seed by seed (95 % Student-t half-width)."""
    diff = np.asarray(new, dtype=float) - np.asarray(committed, dtype=float)
    half = float(stats.t.ppf(0.975, len(diff) - 1) * stats.sem(diff)) if len(diff) > 1 else float("nan")
    return {"mean": float(diff.mean()), "ci95": half, "per_seed": [float(d) for d in diff]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparison", default="compare-permuted-fmnist")
    parser.add_argument("--approach", default="dwa")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output-dir", default="results/numerics-check")
    parser.add_argument("--json", help="also write the results (and the machine's load) to this file")
    args = parser.parse_args()
    before, other = machine(), numerics.other()
    cfgs, row = chosen_configs(args.comparison, args.approach)
    os.environ[numerics.ENV] = str(other)  # the workers this starts import the other numerics
    with numerics.using(other):
        run_sweep(cfgs, args.output_dir, workers=args.workers, threads=1)
        results = [load_run(run_dir(c, args.output_dir)) for c in cfgs]
    if any(r.numerics.get("version") != other or not r.finished for r in results):
        raise SystemExit(f"{args.output_dir}: a run did not finish under numerics {other}")
    new = {m: [float(fn(r.acc_matrix())) for r in results] for m, fn in MEASURES.items()}
    committed = {m: row["test"][m]["per_seed"] for m in MEASURES}
    out = {m: {f"numerics {numerics.VERSION}": committed[m], f"numerics {other}": new[m],
               "difference": paired(new[m], committed[m])} for m in MEASURES}
    print(f"{args.approach} at its chosen point of {args.comparison} {row['chosen']}, seeds {row['seeds']}: "
          f"numerics {other} - numerics {numerics.VERSION} (committed), paired, 95 % interval")
    for m, o in out.items():
        d = o["difference"]
        flag = "" if abs(d["mean"]) <= d["ci95"] else "   <- the interval excludes 0"
        print(f"  {m:<11} {np.mean(committed[m]):.3f} -> {np.mean(new[m]):.3f}: "
              f"{d['mean']:+.3f} ± {d['ci95']:.3f}{flag}")
    command = " ".join(["numerics_check.py"] + sys.argv[1:])
    write_json(args.json, dict(benchmark="numerics_check", command=command, comparison=args.comparison,
                               approach=args.approach, chosen=row["chosen"], seeds=row["seeds"],
                               checked_numerics=other, test=out,
                               cpu_seconds=float(sum(sum(r.task_seconds) for r in results))), before)


if __name__ == "__main__":
    main()
