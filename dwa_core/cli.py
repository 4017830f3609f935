"""`python -m dwa_core run | list | sweep | compare | figures | diagnosis`: every command line of the
project (also `python -m dwa_core.figures` and `python -m dwa_core.diagnosis`), a thin layer over
run_experiment, the sweeps, the comparisons, the figures, the diagnosis and the registries."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from dwa_core.config import ConfigError, ExperimentConfig
from dwa_core.errors import message
from dwa_core.files import check_output_dir, check_output_file, load_config_file, set_dotted
from dwa_core.observers import Observer
from dwa_core.runs import run_dir as run_dir_of

SHORTCUTS = {  # flag -> dotted config field
    "benchmark": "benchmark", "approach": "approach", "network": "network", "seed": "seed",
    "device": "device", "data_dir": "data_dir", "output_dir": "output_dir", "name": "name",
    "max_tasks": "max_tasks", "epochs": "train.epochs", "lr": "train.lr",
    "batch_size": "train.batch_size", "weight_init": "weight_init",
}


def load_preset_or_file(name_or_path: str) -> dict:
    """--preset: a .json/.toml file (files.load_config_file), or the name of a shipped preset."""
    if Path(name_or_path).suffix in (".json", ".toml"):
        return load_config_file(name_or_path)
    from dwa_core.presets import load_preset

    return load_preset(name_or_path)


def parse_assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def config_from_args(args) -> ExperimentConfig:
    values: dict = load_preset_or_file(args.preset) if args.preset else {}
    for flag, key in SHORTCUTS.items():
        if getattr(args, flag) is not None:
            set_dotted(values, key, getattr(args, flag))
    for group, pairs in (("approach_params", args.param), ("benchmark_params", args.benchmark_param),
                         ("network_params", args.network_param), (None, args.set)):
        for text in pairs or []:
            key, value = parse_assignment(text)
            set_dotted(values, f"{group}.{key}" if group else key, _literal(value))
    return ExperimentConfig.from_dict(values)


def _literal(text: str):
    """CLI values: JSON where it parses (numbers, lists, true/false/null), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {"True": True, "False": False, "None": None}.get(text, text)


class ProgressBar(Observer):
    """A tqdm bar per task, one step per epoch, with the epoch's validation accuracy and lr."""

    def __init__(self, epochs: int):
        self.epochs, self.bar = epochs, None

    def before_task(self, t, task):
        from tqdm.auto import tqdm

        self.close()
        self.bar = tqdm(total=self.epochs, desc=f"task {t}", leave=False)

    def after_epoch(self, t, row):
        self.bar.update(1)
        self.bar.set_postfix(valid_acc=f"{row['valid_acc']:.3f}", lr=f"{row['lr']:.2g}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_run(args) -> int:
    from dwa_core.experiment import run_experiment, validate

    cfg = config_from_args(args)
    validate(cfg)
    check_output_dir(cfg.output_dir, "output_dir (--output-dir)")
    bar = ProgressBar(cfg.train.epochs)
    try:
        results = run_experiment(cfg, resume=not args.restart, observer=bar)
    finally:  # an error (disk full, ...) is then printed on a line of its own, not on the bar's
        bar.close()
    run_dir = run_dir_of(cfg)
    print(f"{cfg.approach} on {cfg.benchmark} (seed {cfg.seed}): accuracy acc[t, u] after task t on task u")
    print(format_matrix(results.acc_matrix(), results.task_names))
    from dwa_core import metrics

    acc = results.acc_matrix()
    print(f"average accuracy {metrics.average_accuracy(acc):.4f}  backward transfer "
          f"{metrics.backward_transfer(acc):+.4f}  forgetting {metrics.forgetting(acc):.4f}")
    if not args.no_figure:
        figure = save_accuracy_figure(results, run_dir / "accuracy.png")
        print(f"figure: {figure}")
    print(f"results: {run_dir / 'results.json'}")
    return 0


def format_matrix(acc: np.ndarray, names: list[str]) -> str:
    width = max(len(n) for n in names)
    lines = [" " * (width + 2) + " ".join(f"{u:>6d}" for u in range(len(names)))]
    for t, name in enumerate(names):
        lines.append(f"{name:>{width}}  " + " ".join(f"{v:6.3f}" if u <= t else "     -"
                                                      for u, v in enumerate(acc[t])))
    return "\n".join(lines)


def save_accuracy_figure(results, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from dwa_core import plots

    fig = plots.plot_accuracy_matrix(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def cmd_list(args) -> int:
    from dwa_core import approaches, data, models

    sections = {"benchmarks": data.describe(), "approaches": approaches.describe(),
                "networks": models.NETWORKS.describe()}
    for title, items in sections.items():
        print(f"{title}:")
        for name, doc in items.items():
            print(f"  {name:<20} {doc}")
    return 0


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


def cmd_figures(args) -> int:
    """Regenerate the committed figures of a profile and print their summary numbers."""
    import time

    import matplotlib

    matplotlib.use("Agg")  # the command only writes files (dwa_core.plots leaves the backend alone)
    from dwa_core.figures import make_figures

    check_output_dir(args.out, "--out")  # before any training
    if args.results_dir:
        check_output_dir(args.results_dir, "--results-dir")
    start = time.perf_counter()
    command = "python -m dwa_core.figures " + " ".join(args.argv)
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


def add_run_command(sub) -> None:
    run = sub.add_parser("run", help="run one experiment (defaults: sgd on split-digits)")
    run.add_argument("--preset", help="a preset name (e.g. final-warm) or a .toml/.json config file")
    for flag in SHORTCUTS:
        run.add_argument("--" + flag.replace("_", "-"), dest=flag, default=None)
    run.add_argument("--param", action="append", metavar="KEY=VALUE", help="an approach hyper-parameter")
    run.add_argument("--benchmark-param", action="append", metavar="KEY=VALUE")
    run.add_argument("--network-param", action="append", metavar="KEY=VALUE")
    run.add_argument("--set", action="append", metavar="FIELD=VALUE",
                     help="any config field, dotted (e.g. train.lr_patience=3)")
    run.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    run.add_argument("--no-figure", action="store_true")
    run.set_defaults(func=cmd_run)


def add_sweep_command(sub) -> None:
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


def add_figures_command(sub) -> None:
    from dwa_core.profiles import PROFILES

    p = sub.add_parser("figures", help="regenerate the committed figures (python -m dwa_core.figures)")
    p.add_argument("--profile", choices=sorted(PROFILES), default="smoke")
    p.add_argument("--out", default="figures")
    p.add_argument("--results-dir", default=None, help="cache runs here (resumed on rerun)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=cmd_figures)


def add_diagnosis_command(sub) -> None:
    p = sub.add_parser("diagnosis", help="why DWA forgets: measures from task snapshots "
                       "(python -m dwa_core.diagnosis)")
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="run folders made with task_snapshots=True")
    p.add_argument("--from-data", default=None, metavar="FILE",
                   help="print the ablation table (Markdown) of a data file; nothing is computed")
    p.add_argument("--label", action="append", help="one per RUN_DIR (a repeated label pools runs, e.g. "
                   "seeds); default: the parameters in which the runs differ (ablation_labels)")
    p.add_argument("--output", default=None, help="the JSON data file to write (needed with RUN_DIRs)")
    p.add_argument("--samples", type=int, default=200, help="samples per task (default 200)")
    p.add_argument("--split", choices=("test", "valid"), default="test")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", default=None, help="where the datasets are (default: the runs' own)")
    p.add_argument("--workers", type=int, default=1, help="runs measured at once, one process each (default 1)")
    p.set_defaults(func=cmd_diagnosis)


def build_parser() -> argparse.ArgumentParser:
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


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])[1:]  # after the command's name
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
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


if __name__ == "__main__":
    sys.exit(main())
