"""The README's explorer table: every approach trained once at the explorer's defaults.

    python benchmarks/explorer_defaults.py [--seed 0] [--out tables/explorer-defaults.json]
        [--readme README.md]

Each approach runs the config the explorer builds for it (`widgets.Explorer(approach=NAME).config()`,
the same numbers as clicking Run: split-digits, five two-class tasks), without saving. Writes the data
file (metrics, wall seconds, numerics version) and, with --readme, rewrites the README block between
`<!-- explorer-defaults start -->` and `<!-- explorer-defaults end -->` from it
(tests/test_explorer_table.py checks that the block equals the data file)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

START, END = "<!-- explorer-defaults start -->", "<!-- explorer-defaults end -->"
APPROACHES = ("hat", "dwa", "sgd", "ewc", "lwf", "lfl", "imm-mean", "imm-mode", "progressive", "pathnet",
              "joint", "random")


def measure(name: str, seed: int) -> dict:
    """One approach at the explorer's defaults: final average accuracy, the range of the accuracy on
    each task right after it was learned, BWT, and the wall seconds of the run."""
    from dwa_core import metrics, run_experiment
    from dwa_core.widgets import Explorer

    cfg = Explorer(approach=name).config().replace(seed=seed)
    start = time.perf_counter()
    acc = run_experiment(cfg, save=False).acc_matrix()
    seconds = time.perf_counter() - start
    diagonal = np.diag(acc)
    return {"approach": name, "avg_acc": metrics.average_accuracy(acc), "learned_min": float(diagonal.min()),
            "learned_max": float(diagonal.max()), "bwt": metrics.backward_transfer(acc), "seconds": seconds}


def _signed(value: float) -> str:
    return f"{value:+.3f}".replace("-", "−")


def markdown(data: dict) -> str:
    """The README block: one row per approach, in the data file's order."""
    lines = ["| approach | final avg acc | accuracy on each task when learned | BWT | s |",
             "| --- | --- | --- | --- | --- |"]
    for r in data["rows"]:
        low, high = f"{r['learned_min']:.2f}", f"{r['learned_max']:.2f}"
        learned = low if low == high else f"{low}–{high}"
        lines.append(f"| {r['approach']} | {r['avg_acc']:.3f} | {learned} | {_signed(r['bwt'])} | "
                     f"{r['seconds']:.0f} |")
    return "\n".join(lines)


def update_readme(data: dict, readme: Path) -> bool:
    """Replace the block between START and END by markdown(data); True when the file changed.
    Raises ValueError when the markers are missing."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme}: no {START} ... {END} block")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{markdown(data)}\n{END}{tail}"
    readme.write_text(new)
    return new != text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("tables/explorer-defaults.json"))
    parser.add_argument("--readme", type=Path)
    parser.add_argument("--from-data", type=Path, help="only rewrite the README block from this file")
    args = parser.parse_args(argv)
    if args.from_data:
        data = json.loads(args.from_data.read_text())
    else:
        import torch

        from dwa_core import numerics

        torch.set_num_threads(1)
        rows = []
        for name in APPROACHES:
            rows.append(measure(name, args.seed))
            print(f"{name}: {rows[-1]}", file=sys.stderr)
        data = {"command": "python benchmarks/explorer_defaults.py " + " ".join(argv or sys.argv[1:]),
                "seed": args.seed, "numerics": numerics.identity(), "rows": rows}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(markdown(data))
    if args.readme:
        update_readme(data, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
