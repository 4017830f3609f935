"""An ipywidgets explorer: pick benchmark, approach (its hyper-parameters are generated from its
Params dataclass), seed and epochs; Run trains with a live progress bar and live plots, or
replays a cached result from `results_dir` instantly. `train=False` (papermill) renders only."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import ipywidgets as W
import matplotlib.pyplot as plt

from dwa_core import approaches, data, plots
from dwa_core.config import ExperimentConfig, TrainConfig
from dwa_core.experiment import RESULTS, run_experiment
from dwa_core.results import Results


def param_widget(field: dataclasses.Field, hint) -> W.Widget:
    """One control per Params field: checkbox, int/float box, dropdown (Literal) or text."""
    default = field.default if field.default is not dataclasses.MISSING else None
    desc = dict(description=field.name, style={"description_width": "initial"})
    if typing.get_origin(hint) is typing.Literal:
        return W.Dropdown(options=list(typing.get_args(hint)), value=default, **desc)
    if isinstance(default, bool):
        return W.Checkbox(value=default, **desc)
    if isinstance(default, int):
        return W.IntText(value=default, **desc)
    if isinstance(default, float):
        return W.FloatText(value=default, **desc)
    return W.Text(value="" if default is None else str(default), **desc)


def param_widgets(approach: str) -> dict[str, W.Widget]:
    cls = approaches.get(approach).Params
    hints = typing.get_type_hints(cls)
    return {f.name: param_widget(f, hints[f.name]) for f in dataclasses.fields(cls)}


class Explorer:
    """Build with Explorer(...); `.widget` is the box to display; `.run()` is the Run handler."""

    def __init__(self, benchmark: str = "split-digits", approach: str = "sgd", epochs: int = 3,
                 per_class: int | None = 30, results_dir=None, train: bool = True):
        self.train, self.results_dir = train, Path(results_dir) if results_dir else None
        self.benchmark = W.Dropdown(options=data.names(), value=benchmark, description="benchmark")
        self.approach = W.Dropdown(options=approaches.names(), value=approach, description="approach")
        self.seed = W.IntText(value=0, description="seed")
        self.epochs = W.IntSlider(value=epochs, min=1, max=200, description="epochs")
        self.per_class = per_class
        self.params_box = W.VBox()
        self.button = W.Button(description="Run", button_style="primary")
        self.progress = W.IntProgress(value=0, min=0, max=1, description="progress")
        self.status = W.HTML()
        self.output = W.Output()
        self.results: Results | None = None
        self.figure = None
        self.draws = 0  # how many times the live plot was redrawn
        self.approach.observe(lambda _: self._rebuild_params(), names="value")
        self.button.on_click(lambda _: self.run())
        self._rebuild_params()
        self.widget = W.VBox([W.HBox([self.benchmark, self.approach]), W.HBox([self.seed, self.epochs]),
                              self.params_box, W.HBox([self.button, self.progress]), self.status,
                              self.output])

    def _rebuild_params(self) -> None:
        self.params = param_widgets(self.approach.value)
        self.params_box.children = list(self.params.values())

    def approach_params(self) -> dict:
        """Values that differ from the Params defaults (text fields left empty mean the default)."""
        cls = approaches.get(self.approach.value).Params
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        out = {}
        for name, w in self.params.items():
            value = w.value
            if isinstance(w, W.Text) and value == "":
                continue
            if value != defaults.get(name) and not (isinstance(w, W.Text) and value == str(defaults[name])):
                out[name] = value
        return out

    def config(self) -> ExperimentConfig:
        bp = {"per_class": self.per_class} if self.per_class and "digits" in self.benchmark.value else {}
        return ExperimentConfig(benchmark=self.benchmark.value, approach=self.approach.value,
                                seed=self.seed.value, approach_params=self.approach_params(),
                                benchmark_params=bp, train=TrainConfig(epochs=self.epochs.value),
                                output_dir=str(self.results_dir or "results"))

    def cached(self, cfg: ExperimentConfig) -> Results | None:
        if self.results_dir is None:
            return None
        path = self.results_dir / cfg.run_name() / RESULTS
        if path.exists():
            res = Results.load(path)
            return res if res.finished else None
        return None

    def _on_epoch(self, t: int, epoch: int, row: dict) -> None:
        self.progress.value = min(self.progress.max, t * self.epochs.value + epoch + 1)
        self.status.value = f"task {t} epoch {epoch}: valid acc {row.get('valid_acc', float('nan')):.3f}"

    def _on_task(self, t: int, results: Results) -> None:
        self.results = results
        self.draw()

    def draw(self) -> None:
        if self.results is None:
            return
        plt.close(self.figure) if self.figure is not None else None
        self.figure = plots.plot_accuracy_matrix(self.results)
        self.draws += 1
        self.output.outputs = ()  # works with or without a kernel (unlike `with output:`)
        self.output.append_display_data(self.figure)

    def run(self) -> Results | None:
        """The Run handler: replay from the cache, or train (unless train=False)."""
        cfg = self.config()
        cached = self.cached(cfg)
        if cached is not None:
            self.results = cached
            self.status.value = f"replayed {cfg.run_name()} from {self.results_dir}"
            self.draw()
            return cached
        if not self.train:
            self.status.value = "training disabled (train=False): nothing cached for this configuration"
            return None
        n_tasks = len(data.load_benchmark(cfg, "cpu").tasks)
        self.progress.max, self.progress.value = n_tasks * self.epochs.value, 0
        self.results = run_experiment(cfg, save=self.results_dir is not None, on_epoch=self._on_epoch,
                                      on_task=self._on_task)
        self.progress.value = self.progress.max
        self.status.value = f"done: final average accuracy {self.results.acc_matrix()[-1].mean():.3f}"
        self.draw()
        return self.results


def explorer(**kwargs) -> Explorer:
    return Explorer(**kwargs)
