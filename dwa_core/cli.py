"""`python -m dwa_core run | list | sweep`: a thin layer over run_experiment and the registries."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import tomllib

from dwa_core.config import ConfigError, ExperimentConfig

SHORTCUTS = {  # flag -> dotted config field
    "benchmark": "benchmark", "approach": "approach", "network": "network", "seed": "seed",
    "device": "device", "data_dir": "data_dir", "output_dir": "output_dir", "name": "name",
    "max_tasks": "max_tasks", "epochs": "train.epochs", "lr": "train.lr",
    "batch_size": "train.batch_size", "weight_init": "weight_init",
}


def load_config_file(name_or_path: str) -> dict:
    """A preset: a .json/.toml file, or the name of a preset shipped in dwa_core/presets."""
    path = Path(name_or_path)
    if path.suffix in (".json", ".toml"):
        if not path.exists():
            raise ConfigError(f"preset file {path} does not exist")
        text = path.read_text()
        return json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    try:
        from dwa_core.presets import load_preset
    except ImportError as err:
        raise ConfigError(f"preset {name_or_path!r}: no such file and no shipped presets") from err
    return load_preset(name_or_path)


def set_dotted(values: dict, key: str, value) -> None:
    """values["a"]["b"] = value for key "a.b" (creating dicts on the way)."""
    *parents, last = key.split(".")
    for parent in parents:
        values = values.setdefault(parent, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{key}: {parent} is not a group of settings")
    values[last] = value


def parse_assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def config_from_args(args) -> ExperimentConfig:
    values: dict = load_config_file(args.preset) if args.preset else {}
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


def cmd_run(args) -> int:
    from tqdm.auto import tqdm

    from dwa_core.experiment import run_experiment, validate

    cfg = config_from_args(args)
    validate(cfg)
    bar = None

    def on_epoch(t, epoch, row):
        nonlocal bar
        if bar is None or bar.desc != f"task {t}":
            if bar is not None:
                bar.close()
            bar = tqdm(total=cfg.train.epochs, desc=f"task {t}", leave=False)
        bar.update(1)
        bar.set_postfix(valid_acc=f"{row['valid_acc']:.3f}", lr=f"{row['lr']:.2g}")

    results = run_experiment(cfg, resume=not args.restart, on_epoch=on_epoch)
    if bar is not None:
        bar.close()
    run_dir = Path(cfg.output_dir) / cfg.run_name()
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


def _os_error(err: OSError) -> str:
    """One line: what failed, on which path, and why (the OS's reason)."""
    text = err.strerror or str(err)
    if err.filename is not None and str(err.filename) not in text:
        text = f"{err.filename}: {text}"
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dwa_core", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every epoch")
    sub = parser.add_subparsers(dest="command", required=True)
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
    lister = sub.add_parser("list", help="benchmarks, approaches and networks")
    lister.set_defaults(func=cmd_list)
    try:
        from dwa_core.sweep import add_sweep_command
    except ImportError:
        pass
    else:
        add_sweep_command(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except FileNotFoundError as err:  # a missing dataset or file: spelled for the command line
        message = err.message("cli") if hasattr(err, "message") else _os_error(err)
        print(f"error: {message}", file=sys.stderr)
        return 2
    except ValueError as err:  # ConfigError, unknown names, bad files
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # unwritable output, unreadable data, disk full: one line with the path
        print(f"error: {_os_error(err)}", file=sys.stderr)
        return 1
    except RuntimeError as err:  # DivergedError and friends: one line, results so far are kept
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume after the last completed task",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
