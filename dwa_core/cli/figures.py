"""The `figures` and `diagnosis` commands (also `python -m dwa_core.figures` and `python -m
dwa_core.diagnosis`): regenerate the committed figures of a profile; measure why DWA forgets."""

from __future__ import annotations

import sys

from dwa_core.errors import message
from dwa_core.files import check_output_dir, check_output_file


def cmd_figures(args) -> int:
    """Regenerate the committed figures of a profile and print their summary numbers."""
    import time

    from dwa_core.figures import make_figures

    check_output_dir(args.out, "--out")  # before any training
    if args.results_dir:
        check_output_dir(args.results_dir, "--results-dir")
    if args.threads < 1:
        raise ValueError(f"--threads: must be an integer >= 1, got {args.threads}")
    import torch

    # runs give the same numbers on any thread count (docs/design.md); one thread per process is
    # what the committed figures were timed with, whatever the environment says
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    command = "python -m dwa_core.figures " + " ".join(args.argv)
    if args.fig7_run:
        from dwa_core.figures import fig7_from_run

        for path in fig7_from_run(args.fig7_run, args.out, command.strip()):
            print(f"written {path}")
        return 0
    result = make_figures(args.profile, args.out, args.results_dir, command.strip(), device=args.device,
                          data_dir=args.data_dir)
    for name, row in result.items():
        print(f"{name:12s} final acc {row['final_accuracy']:.3f}  % forgotten {row['percent_forgotten']:.1f}"
              f"  rho {row['rho_mean']:.3f} ({row['rho_ci95']:.3f})")
    print(f"figures written to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_diagnosis(args) -> int:
    """Why DWA forgets (dwa_core.diagnosis): measure runs into a data file, or print the table of
    one (--from-data). Exit code 2 on any error (bad run folder, data file or output)."""
    from dwa_core import diagnosis

    try:
        if args.from_data:
            print(diagnosis.report_markdown(args.from_data))
            return 0
        if not args.run_dirs or not args.output:
            raise ValueError("give RUN_DIRs and --output, or --from-data FILE")
        if args.label and len(args.label) != len(args.run_dirs):
            raise ValueError(f"--label: give one per RUN_DIR ({len(args.run_dirs)}), got {len(args.label)}")
        check_output_file(args.output, "--output")  # before any work
        frames, embedding = diagnosis.diagnose_runs(args.run_dirs, args.label, args.samples, args.device,
                                                    split=args.split, data_dir=args.data_dir,
                                                    workers=args.workers)
        diagnosis.save_diagnosis(args.output, frames, "python -m dwa_core.diagnosis " + " ".join(args.argv),
                                 embedding)
    except (ValueError, OSError) as err:  # DiagnosisError, ResultsError, ConfigError, missing data
        print(f"error: {message(err)}", file=sys.stderr)
        return 2
    print(diagnosis.summarise(frames).round(3).to_string())
    print(f"written to {args.output}")
    return 0


def add_figures_command(sub) -> None:
    """The `figures` sub-command's parser (its profiles: profiles.PROFILES)."""
    from dwa_core.profiles import PROFILES

    p = sub.add_parser("figures", help="regenerate the committed figures (python -m dwa_core.figures)")
    p.add_argument("--profile", choices=sorted(PROFILES), default="smoke")
    p.add_argument("--out", default="figures")
    p.add_argument("--results-dir", default=None, help="cache runs here (resumed on rerun)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1, what the committed figures use; the numbers do not "
                   "depend on it)")
    p.add_argument("--fig7-run", default=None, metavar="RUN_DIR",
                   help="only draw paper Fig. 7 (masks, embedding PCA) from this finished DWA run "
                   "(made with task_snapshots=True); nothing is trained")
    p.set_defaults(func=cmd_figures)


def add_diagnosis_command(sub) -> None:
    """The `diagnosis` sub-command's parser."""
    p = sub.add_parser("diagnosis", help="why DWA forgets: measures from task snapshots "
                       "(python -m dwa_core.diagnosis)")
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="run folders made with task_snapshots=True")
    p.add_argument("--from-data", default=None, metavar="FILE",
                   help="print the ablation and embedding tables (Markdown) of a data file; "
                   "nothing is computed")
    p.add_argument("--label", action="append", help="one per RUN_DIR (a repeated label pools runs, e.g. "
                   "seeds); default: the parameters in which the runs differ (ablation_labels)")
    p.add_argument("--output", default=None, help="the JSON data file to write (needed with RUN_DIRs)")
    p.add_argument("--samples", type=int, default=200, help="samples per task (default 200)")
    p.add_argument("--split", choices=("test", "valid"), default="test")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", default=None, help="where the datasets are (default: the runs' own)")
    p.add_argument("--workers", type=int, default=1,
                   help="runs measured at once, one process each (default 1)")
    p.set_defaults(func=cmd_diagnosis)
