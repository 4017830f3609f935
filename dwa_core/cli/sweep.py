"""The `sweep` and `compare` commands: run a sweep definition and aggregate it; run a comparison
(select on validation, report test over seeds) and refresh its README block."""

from __future__ import annotations

import sys
from pathlib import Path

from dwa_core.files import check_output_dir, check_output_file


def cmd_sweep(args) -> int:
    """Run a sweep definition (unless --aggregate-only / --dry-run), then aggregate what finished.
    Exit code 1 when a run failed or a results file could not be read, else 0."""
    from dwa_core.sweep import load_definition

    d = load_definition(args.definition)
    out = Path(args.output_dir or d.output_dir)
    check_output_dir(out, "--output-dir" if args.output_dir else f"{args.definition} [sweep] output_dir")
    if args.dry_run:
        print("\n".join(c.run_name() for c in d.configs) + f"\n{len(d.configs)} runs -> {out}")
        return 0
    failed = 0
    if d.search and (args.backend or d.backend) == "ray" and not args.aggregate_only:
        _tune(d, out, args)  # Ray Tune (Optuna when asked) replaces d.configs by its trials
    elif not args.aggregate_only:
        failed = _run_definition(d, out, args)
    return 1 if _aggregate(d, out, args.table) or failed else 0


def _tune(d, out: Path, args) -> None:
    from dwa_core.sweep import tune_search, with_fields

    result = tune_search(d.base, d.search["space"], out, num_samples=int(d.search.get("num_samples", 8)),
                         algorithm=d.search.get("algorithm", "random"), address=args.address,
                         workers=args.workers or d.workers, threads=args.threads)
    best = result.get_best_result()  # by validation (sweep.execute.SELECT_METRIC); test only reported
    print(f"best on validation: {best.config} valid_avg_acc={best.metrics.get('valid_avg_acc')} "
          f"(test avg_acc={best.metrics.get('avg_acc')})")
    d.configs = [with_fields(d.base, **r.config) for r in result]


def _run_definition(d, out: Path, args) -> int:
    """Run every config of `d`; prints the counts and each failure; returns the number failed."""
    from dwa_core.sweep import ERROR, run_sweep

    outcomes = run_sweep(d.configs, out, backend=args.backend or d.backend, workers=args.workers or d.workers,
                         threads=args.threads, address=args.address)
    print("runs: " + ", ".join(f"{s} {sum(o['status'] == s for o in outcomes)}"
                               for s in ("trained", "resumed", "cached", "failed")))
    failed = [o for o in outcomes if o["status"] == "failed"]
    for o in failed:
        print(f"failed: {o['run']}: {o['error']} (see {o['run_dir']}/{ERROR})")
    return len(failed)


def _aggregate(d, out: Path, table: bool) -> int:
    """runs.csv, summary.csv (and table.md) of the finished runs; reports each unreadable results
    file on stderr and returns their number."""
    from dwa_core import aggregate

    problems: list = []
    frame = aggregate.results_frame(aggregate.load_results(out, None if d.search else d.configs, problems))
    for path, reason in problems:
        print(f"skipped (unreadable results): {path}: {reason}", file=sys.stderr)
    if frame.empty:
        print("no finished runs")
        return len(problems)
    frame.to_csv(out / "runs.csv", index=False)
    aggregate.summarize(frame).to_csv(out / "summary.csv", index=False)
    if table:
        text = aggregate.to_markdown(aggregate.related_work_table(frame))
        (out / "table.md").write_text(text + "\n")
        print(text)
    else:
        # valid_avg_acc chooses a point; avg_acc and rho are its test numbers
        summary = aggregate.summarize(frame, metric_names=("valid_avg_acc", "avg_acc", "rho"))
        print(summary.to_string(index=False))
    return len(problems)


def cmd_compare(args) -> int:
    """Run a comparison (dwa_core.compare): train what is missing, select on validation, write the
    data file, print the Markdown table, and with --readme refresh its block in the README."""
    from dwa_core import compare

    if args.from_data:
        data = compare.read_data(args.from_data)
        warning = compare.stale_warning(data, args.from_data)
        if warning:
            print(warning, file=sys.stderr)
    elif args.definition is None:
        raise ValueError("compare: give a comparison definition, or --from-data FILE")
    else:
        name = Path(compare.find_definition(args.definition)).stem
        command = "python -m dwa_core compare " + " ".join(args.argv)
        path = Path(args.data or compare.TABLES_DIR / f"{name}.json")
        check_output_dir(args.output_dir, "--output-dir")  # every output, before anything trains
        check_output_file(path, "--data")
        if args.readme:
            compare.check_readme(args.readme, compare.load_comparison(args.definition).name)
        data = compare.run_comparison(args.definition, args.output_dir, workers=args.workers,
                                      threads=args.threads, train=not args.no_train, command=command.strip())
        compare.write_data(data, path)
        print(f"data written to {path}")
    print(compare.markdown(data))
    if args.readme:
        changed = compare.update_readme(data, args.readme)
        print(f"{args.readme}: {'updated' if changed else 'already up to date'}")
    return 0


def add_sweep_command(sub) -> None:
    """The `sweep` sub-command's parser."""
    p = sub.add_parser("sweep", help="run a sweep definition (TOML/JSON) and aggregate it")
    p.add_argument("definition", help="a .toml/.json file, or the name of one in dwa_core/sweeps")
    p.add_argument("--backend", choices=("local", "ray"), default=None)
    p.add_argument("--workers", type=int, default=None, help="parallel runs (default: devices / CPUs)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start Ray locally)")
    p.add_argument("--output-dir", default=None)
    p.add_argument("--table", action="store_true", help="print the related-work table as Markdown")
    p.add_argument("--aggregate-only", action="store_true", help="do not run, only aggregate")
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    p.set_defaults(func=cmd_sweep)


def add_compare_command(sub) -> None:
    """The `compare` sub-command's parser."""
    p = sub.add_parser("compare", help="a fair comparison: select on validation, report test over seeds")
    p.add_argument("definition", nargs="?", default=None,
                   help="a comparison definition (.toml with [select]), or its name in dwa_core/sweeps")
    p.add_argument("--output-dir", default="results/compare", help="where the runs go (default: %(default)s)")
    p.add_argument("--data", default=None, help="the data file to write (default: tables/<name>.json)")
    p.add_argument("--from-data", default=None, help="print (and --readme) from a data file; train nothing")
    p.add_argument("--readme", default=None, help="refresh this README's block of the comparison")
    p.add_argument("--workers", type=int, default=1, help="parallel runs")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--no-train", action="store_true", help="only select and aggregate finished runs")
    p.set_defaults(func=cmd_compare)
