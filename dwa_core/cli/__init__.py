"""`python -m dwa_core run | list | sweep | compare | figures | diagnosis`: every command line of the
project (also `python -m dwa_core.figures` and `python -m dwa_core.diagnosis`), a thin layer over
run_experiment, the sweeps, the comparisons, the figures, the diagnosis and the registries."""

# One module per concern, each with its commands and their parsers: run.py (run, list), sweep.py
# (sweep, compare), figures.py (figures, diagnosis); this one builds the parser and turns errors into
# exit codes (the docstring above is the parser's description).

from __future__ import annotations

import argparse
import logging
import os
import sys

from dwa_core import allocator, numerics
from dwa_core.cli.figures import add_diagnosis_command, add_figures_command, cmd_diagnosis, cmd_figures
from dwa_core.cli.run import (
    SHORTCUTS,
    ProgressBar,
    add_run_command,
    cmd_list,
    cmd_run,
    config_from_args,
    format_matrix,
    load_preset_or_file,
    parse_assignment,
    save_accuracy_figure,
)
from dwa_core.cli.sweep import add_compare_command, add_sweep_command, cmd_compare, cmd_sweep
from dwa_core.errors import message

__all__ = ["SHORTCUTS", "ProgressBar", "add_compare_command", "add_diagnosis_command", "add_figures_command",
           "add_run_command", "add_sweep_command", "build_parser", "cmd_compare", "cmd_diagnosis",
           "cmd_figures", "cmd_list", "cmd_run", "cmd_sweep", "config_from_args", "format_matrix",
           "load_preset_or_file", "entry", "main", "parse_assignment", "save_accuracy_figure"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of `python -m dwa_core`: one sub-command per command, each knowing its `func`."""
    parser = argparse.ArgumentParser(prog="python -m dwa_core", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every epoch")
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_command(sub)
    sub.add_parser("list", help="benchmarks, approaches and networks").set_defaults(func=cmd_list)
    add_sweep_command(sub)
    add_compare_command(sub)
    add_figures_command(sub)
    add_diagnosis_command(sub)
    return parser


def entry(argv=None) -> int:
    """The program `python -m dwa_core` / `dwa-core`: `main(argv)` in a process that only writes
    figure files, so matplotlib gets a file backend (Agg) unless the user chose one (MPLBACKEND), and
    whose malloc keeps freed memory for reuse (`allocator.keep_freed_memory`). Calling `main` from
    Python (a notebook, a test) leaves the caller's backend, allocator and environment alone."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        allocator.keep_freed_memory()  # this process is ours: freed tensors' pages are reused (allocator.py)
    except ValueError as err:  # a bad DWA_CORE_MALLOC
        print(f"error: {message(err)}", file=sys.stderr)
        return 2
    return main(argv)


def main(argv=None) -> int:
    """Run the command in `argv` (default: sys.argv[1:]); returns the exit code: 0, 1 (a failed run,
    an unwritable output, a diverged run), 2 (a bad argument, file or config), 130 (interrupted)."""
    args = build_parser().parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])[1:]  # after the command's name
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        numerics.check_selection()
        return args.func(args)
    except (FileNotFoundError, ValueError) as err:  # a missing dataset or file, ConfigError, bad names
        print(f"error: {message(err)}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as err:  # unwritable output, disk full; DivergedError (results kept)
        print(f"error: {message(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume after the last completed task",
              file=sys.stderr)
        return 130

