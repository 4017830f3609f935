"""The `run` and `list` commands: one experiment from a preset and flags (`config_from_args`), with
a progress bar, the accuracy matrix and its figure; the registries' contents."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dwa_core.config import ConfigError, ExperimentConfig
from dwa_core.files import check_output_dir, load_config_file, set_dotted
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
    """"KEY=VALUE" -> (KEY, VALUE), both stripped; ConfigError when there is no "=" or no key."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def config_from_args(args) -> ExperimentConfig:
    """The config of `run`'s parsed arguments: the preset (if any), then the SHORTCUTS flags, then
    --param / --benchmark-param / --network-param / --set, each value read by `_literal`."""
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
    """Run (or resume) one experiment; print its accuracy matrix and metrics, save its figure."""
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
    """The (T, T) accuracy matrix as text: one row per task trained, "-" above the diagonal."""
    width = max(len(n) for n in names)
    lines = [" " * (width + 2) + " ".join(f"{u:>6d}" for u in range(len(names)))]
    for t, name in enumerate(names):
        lines.append(f"{name:>{width}}  " + " ".join(f"{v:6.3f}" if u <= t else "     -"
                                                      for u, v in enumerate(acc[t])))
    return "\n".join(lines)


def save_accuracy_figure(results, path: Path) -> Path:
    """Save `plots.plot_accuracy_matrix(results)` to `path` (PNG) with whatever matplotlib backend
    the process has (the command line's is Agg: `main`)."""
    from dwa_core import plots

    fig = plots.plot_accuracy_matrix(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def cmd_list(args) -> int:
    """Print the registered benchmarks, approaches and networks, one line each."""
    from dwa_core import approaches, data, models

    sections = {"benchmarks": data.describe(), "approaches": approaches.describe(),
                "networks": models.NETWORKS.describe()}
    for title, items in sections.items():
        print(f"{title}:")
        for name, doc in items.items():
            print(f"  {name:<20} {doc}")
    return 0


def add_run_command(sub) -> None:
    """The `run` sub-command's parser."""
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
