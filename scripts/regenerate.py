"""Remake the committed data files whose numerics are not the code's (after a numerics VERSION bump,
dwa_core/numerics.py), each with the command it records, in an order where every command finds
what it reads: the comparisons, the ablation sweep and the diagnoses (which read those runs), the
figures (which read runs and the diagnosis file), the benchmarks, and the README blocks made from
them.

    python scripts/regenerate.py          # what is stale and the commands that remake it, in order
    python scripts/regenerate.py --run    # run them; a rerun skips the files already current and
                                          # the runs already finished under results/
    DWA_CORE_NUMERICS=5 python scripts/regenerate.py --run   # remake them under the next numerics
                                          # before it becomes the default (dwa_core/numerics.py)

Most commands are run as recorded. Three are rebuilt, because they name run folders, whose names
hold a hash of the run's config and hence of the numerics version: the split-fmnist diagnosis (the
runs of the sweep dwa-ablations-split-fmnist, in the definition's order), the mixture-offline
diagnosis and Fig. 7 (DWA's final runs in the comparison compare-mixture-offline, at the point the
comparison chose; the diagnosis's label is made from that point, which a remade comparison may
change). What no command remakes is the prose that quotes the numbers (README.md,
docs/*.md, notebooks' markdown and the tests that pin a reading): `--run` ends by listing where to
look.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dwa_core import compare, numerics, runs  # noqa: E402
from dwa_core.sweep import load_definition  # noqa: E402

ABLATIONS, ABLATIONS_DIR = "dwa-ablations-split-fmnist", "results/ablations"
MIXTURE, COMPARE_DIR = "compare-mixture-offline", "results/compare"
SPLIT_DIAGNOSIS = "tables/dwa-diagnosis-split-fmnist.json"
MIXTURE_DIAGNOSIS = "tables/dwa-diagnosis-mixture-offline.json"
DIAGNOSIS_BLOCK = ("<!-- dwa-diagnosis start -->", "<!-- dwa-diagnosis end -->")
PROSE = ["README.md", "docs/*.md", "notebooks/*.ipynb (markdown cells)",
         "tests/test_notebooks.py (readings pinned to a numerics version)"]


@dataclass
class Step:
    """Commands (argv lists, run in order from the repository root) that remake `outputs`."""
    title: str
    outputs: list[str]
    commands: list = field(default_factory=list)
    after: object = None  # a callable run after the commands (e.g. a README block)


def _recorded(path: str) -> str:
    return json.loads((ROOT / path).read_text()).get("command") or ""


def _argv(command: str) -> list[str]:
    """A recorded command as argv: `python ...` runs this interpreter; a benchmark recorded as
    `bench_x.py ...` (benchmarks/_machine.py's form) runs from benchmarks/."""
    words = shlex.split(command)
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    return [sys.executable, f"benchmarks/{words[0]}", *words[1:]]


def data_files() -> list[str]:
    """The committed data files that record a command (tables/*.json, figures/*.json), repo-relative."""
    files = sorted(ROOT.glob("tables/*.json")) + sorted(ROOT.glob("figures/*.json"))
    out = []
    for path in files:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("command"):
            out.append(path.relative_to(ROOT).as_posix())
    return out


def ablation_run_dirs() -> list[str]:
    return [str(runs.run_dir(cfg, ABLATIONS_DIR)) for cfg in load_definition(ABLATIONS).configs]


def _mixture_dwa_point() -> tuple[list[str], str]:
    """(run folders, label) of DWA's final runs of compare-mixture-offline at the point its data file
    says was chosen. The label is made from the point: "dwa" and the parameters in which the row's
    candidates differ, by their last dotted name ("dwa mask_start=0.2, lr=0.003"), so that a
    comparison remade with another choice does not leave the old point's label on the new runs."""
    comp = compare.load_comparison(MIXTURE)
    data = compare.read_data(ROOT / "tables" / f"{MIXTURE}.json")
    row = next(r for r in data["rows"] if r["approach"] == "dwa")
    try:
        chosen = compare.chosen_point(comp, row)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    changes = [compare._changes(c, comp.base) for r in comp.rows if r.label == row["label"]
               for c in r.candidates]
    varied = [k for k in row["chosen"] if len({repr(c.get(k)) for c in changes}) > 1]
    label = ("dwa " + ", ".join(f"{k.rsplit('.', 1)[-1]}={row['chosen'][k]}" for k in varied)).strip()
    return [str(runs.run_dir(chosen.replace(seed=s), COMPARE_DIR)) for s in row["seeds"]], label


def _diagnosis_block() -> None:
    """Rewrite the README's diagnosis tables from the split-fmnist file (`--from-data`)."""
    out = subprocess.run([sys.executable, "-m", "dwa_core.diagnosis", "--from-data", SPLIT_DIAGNOSIS],
                         cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.strip()
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = DIAGNOSIS_BLOCK
    head, rest = text.split(start, 1)
    readme.write_text(f"{head}{start}\n{out}\n{end}{rest.split(end, 1)[1]}")


def plan() -> list[Step]:
    """Every step, in order, whatever is stale (`stale_steps` filters). Each data file that records
    a command belongs to exactly one step."""
    files = data_files()
    by_command: dict[str, list[str]] = {}
    for path in files:
        by_command.setdefault(_recorded(path), []).append(path)
    steps = [Step(f"comparison {p}", [p], [_argv(_recorded(p))])
             for p in files if Path(p).name.startswith("compare-")]
    # the split-fmnist file was made without --label (labels from the runs' parameters)
    python = [sys.executable, "-m"]
    steps.append(Step("ablation sweep and split-fmnist diagnosis", [SPLIT_DIAGNOSIS], [
        [*python, "dwa_core", "sweep", ABLATIONS, "--output-dir", ABLATIONS_DIR, "--workers", "2"],
        [*python, "dwa_core.diagnosis", *ablation_run_dirs(), "--samples", "100", "--workers", "2",
         "--output", SPLIT_DIAGNOSIS]], after=_diagnosis_block))
    mixture_dirs, mixture_label = _mixture_dwa_point()
    label_args = [a for _ in mixture_dirs for a in ("--label", mixture_label)]
    steps.append(Step("mixture-offline diagnosis", [MIXTURE_DIAGNOSIS], [
        [*python, "dwa_core.diagnosis", *mixture_dirs, *label_args, "--output", MIXTURE_DIAGNOSIS,
         "--workers", "2"]]))
    fig7 = [p for p in files if "--fig7-run" in _recorded(p)]
    steps.append(Step("Fig. 7", fig7, [
        [*python, "dwa_core.figures", "--fig7-run", mixture_dirs[0], "--out", "figures"]]))
    done = {p for s in steps for p in s.outputs}
    rest = [c for c, paths in by_command.items() if not set(paths) <= done]
    # the figures first (they read the runs and the diagnosis file), the benchmarks' JSON after
    rest.sort(key=lambda c: (not c.startswith("python -m dwa_core.figures"), c))
    steps += [Step(", ".join(by_command[c]), by_command[c], [_argv(c)]) for c in rest]
    steps.append(Step("the README's Measured block", [], [
        [sys.executable, "benchmarks/measured_table.py", "--readme", "README.md"]]))
    return steps


def _stale(path: str) -> bool:
    file = ROOT / path
    if not file.exists():
        return True
    return numerics.mismatch(json.loads(file.read_text()).get("numerics")) is not None


def stale_steps(steps: list[Step]) -> list[Step]:
    """The steps with a stale or missing output; the Measured block whenever any step is left."""
    left = [s for s in steps if s.outputs and any(_stale(p) for p in s.outputs)]
    return left + [s for s in steps if not s.outputs] if left else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="store_true", help="run the commands (default: list them)")
    args = parser.parse_args()
    steps = stale_steps(plan())
    if not steps:
        print(f"every committed data file is of numerics version {numerics.VERSION}")
        return 0
    if not args.run:
        for step in steps:
            _show(step)
        return 0
    run_all()
    print("now read the prose that quotes these numbers: " + ", ".join(PROSE))
    return 0


def _show(step: Step) -> None:
    print(f"# {step.title}", flush=True)
    for argv in step.commands:
        print(shlex.join(["python" if a == sys.executable else a for a in argv]), flush=True)


def run_all() -> None:
    """Run the first stale step, then plan again, until none is left, then the steps that remake no
    data file (the README's Measured block): a step's commands are built from the files the earlier
    steps remade (the mixture diagnosis and Fig. 7 read the run folders of the point the remade
    comparison chose, which may not be the old one). Raises SystemExit when a step ran and its
    outputs are still stale."""
    done: set[str] = set()
    while steps := stale_steps(plan()):
        step = steps[0]
        if step.title in done:
            raise SystemExit(f"{step.title}: its commands ran, and {', '.join(step.outputs)} are still stale")
        _run(step)
        done.add(step.title)
    for step in plan():
        if not step.outputs:
            _run(step)


def _run(step: Step) -> None:
    _show(step)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the benchmarks import dwa_core from here
    for argv in step.commands:
        subprocess.run(argv, cwd=ROOT, check=True, env=env)
    if step.after:
        step.after()


if __name__ == "__main__":
    raise SystemExit(main())
