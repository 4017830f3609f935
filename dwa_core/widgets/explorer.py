"""The Explorer: the layout that joins the controls (controls.py), the runner (runner.py: the one task
loop in a background thread, Stop as an observer) and the session's comparison (session.py).
Defaults are the smoke profile (`profiles.profile_config("smoke", approach)`) made smaller by SMALL,
under which every approach learns. Nothing trains until Run is clicked, so under papermill the
explorer only renders."""

from __future__ import annotations

import dataclasses
import html
import time
from pathlib import Path

import ipywidgets as W

from dwa_core import approaches, data, metrics, models, plots
from dwa_core.config import ExperimentConfig, TrainConfig
from dwa_core.errors import one_line
from dwa_core.files import check_output_dir
from dwa_core.observers import Observer, Observers
from dwa_core.profiles import profile_config
from dwa_core.results import Results
from dwa_core.widgets.controls import Form, network_form
from dwa_core.widgets.drawing import plot_history, plot_overlay, show_figure
from dwa_core.widgets.runner import Runner
from dwa_core.widgets.session import Run, Session

PROFILE = "smoke"
# On top of the smoke profile, so a run takes seconds on a laptop (every approach still learns:
# measured in tests/test_widgets.py). Benchmark keys apply where the benchmark has the field.
SMALL = {"benchmark_params": {"per_class": 50}, "train": {"epochs": 5, "batch_size": 16},
         "approach_params": {"dwa": {"curriculum": "linear:3:0.2"}}}
NETWORK_DEFAULT = "mlp"
STYLE = {"description_width": "initial"}
TABLE_CSS = ("<style>.dwa-runs th, .dwa-runs td {padding: 2px 10px; text-align: right}"
             ".dwa-runs tbody tr:nth-child(odd) {background: rgba(127, 127, 127, 0.08)}</style>")
GRID = W.Layout(grid_template_columns="repeat(3, minmax(0, 1fr))", grid_gap="2px 12px")
SECTIONS = ("benchmark", "train", "network", "approach")


class LiveView(Observer):
    """The explorer's observer of the task loop: progress bar, status line and live curves."""

    def __init__(self, ex: Explorer, epochs: int, n_tasks: int):
        self.ex, self.epochs, self.n_tasks = ex, epochs, n_tasks

    def before_task(self, t, task):
        self.ex.status.value = line(f"training task {t + 1}/{self.n_tasks} ({task.name}) ...")

    def after_epoch(self, t, row):
        ex = self.ex
        ex.history.append(dict(row, task=t))
        done = sum(r["task"] == t for r in ex.history)
        ex.progress.value = min(ex.progress.max, t * self.epochs + done)
        ex.status.value = line(f"task {t + 1} epoch {row['epoch'] + 1}: train loss "
                               f"{row['train_loss']:.3f}, valid acc {row['valid_acc']:.3f}")
        # live, but drawing never takes more than about a quarter of the time (matplotlib is slow)
        if time.perf_counter() - ex.last_draw > max(0.5, 3 * ex.draw_seconds):
            ex.draw(final=False)

    def after_task(self, t, results):
        self.ex.progress.value = (t + 1) * self.epochs
        self.ex.draw(final=True)


class Explorer:
    """Build with Explorer(); `.widget` is the box to display. `run()` trains synchronously (tests,
    scripts); the Run button trains in a background thread so Stop stays clickable. `observers`:
    extra observers (observers.Observer) of every training the explorer starts."""

    def __init__(self, benchmark: str = "split-digits", approach: str = "hat", seed: int = 0,
                 results_dir=None, out_dir="_out", train: bool = True, device: str = "cpu", data_dir=None):
        self.train_enabled, self.device, self.data_dir = train, device, data_dir
        self.results_dir = Path(results_dir) if results_dir else None
        self.out_dir = Path(out_dir)
        self.session, self.runner = Session(self.results_dir), Runner()
        self.observers: list[Observer] = []
        self.results: Results | None = None
        self.history: list[dict] = []
        self.draws, self.last_draw, self.draw_seconds = 0, 0.0, 0.0
        self.forms: dict[str, Form] = {}
        self._make_controls(benchmark, approach, seed)
        self._rebuild()
        self.widget = W.VBox([
            W.HBox([self.benchmark, self.approach, self.network, self.seed]), self.sections,
            W.HBox([self.run_button, self.stop_button, self.progress]), self.status,
            W.HBox([self.curves, self.matrix]),
            W.HTML("<b>Runs of this session</b> (differences from run 1)"), self.compare_table,
            self.export_button, self.overlay])
        self.widget.add_class("dwa-explorer")

    def _make_controls(self, benchmark: str, approach: str, seed: int) -> None:
        dropdown = lambda options, value, name: W.Dropdown(  # noqa: E731
            options=options, value=value, description=name, style=STYLE)
        self.benchmark = dropdown(data.names(), benchmark, "benchmark")
        self.approach = dropdown(approaches.names(), approach, "approach")
        self.network = dropdown(list(models.ARCHITECTURES), NETWORK_DEFAULT, "network")
        self.seed = W.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", style=STYLE,
                                     layout=W.Layout(width="140px"))
        self.boxes = {k: W.GridBox(layout=GRID) for k in SECTIONS}
        self.sections = W.Tab(children=list(self.boxes.values()))
        for i, k in enumerate(self.boxes):
            self.sections.set_title(i, k)
        self.run_button = W.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.export_button = W.Button(description="Export table", icon="download")
        self.progress = W.IntProgress(value=0, min=0, max=1, description="progress", style=STYLE)
        self.status = W.HTML(value="ready: nothing trained yet")
        self.status.add_class("dwa-status")  # where the browser tests read it
        self.curves, self.matrix = W.Output(), W.Output()
        self.compare_table, self.overlay = W.HTML(), W.Output()
        self.compare_table.add_class("dwa-runs")
        self.benchmark.observe(lambda _: self._rebuild(), names="value")
        self.approach.observe(lambda _: self._rebuild(), names="value")
        self.network.observe(lambda _: self._rebuild(keep=("benchmark", "train", "approach")), names="value")
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.export_button.on_click(lambda _: self._export_clicked())

    # -- controls --
    def profile_config(self) -> ExperimentConfig:
        """The defaults of the current benchmark/approach: the smoke profile (profiles.py), made
        smaller by SMALL."""
        cfg = profile_config(PROFILE, self.approach.value, self.seed.value, self.device, self.data_dir)
        fields = {f.name for f in dataclasses.fields(data.get_spec(self.benchmark.value).Params)}
        bench = cfg.benchmark_params if cfg.benchmark == self.benchmark.value else {}
        bench = {**bench, **{k: v for k, v in SMALL["benchmark_params"].items() if k in fields}}
        approach = {**cfg.approach_params, **SMALL["approach_params"].get(self.approach.value, {})}
        return cfg.replace(benchmark=self.benchmark.value, benchmark_params=bench, approach_params=approach,
                           train=dict(SMALL["train"]))

    def _rebuild(self, keep: tuple = ()) -> None:
        """New controls for the current benchmark, approach and network (defaults of the profile);
        clears the plots and status of the previous choice."""
        cfg, name = self.profile_config(), self.approach.value
        family = approaches.get(name).family
        built = {"benchmark": lambda: Form(data.get_spec(self.benchmark.value).Params, "benchmark",
                                           cfg.benchmark_params),
                 "train": lambda: Form(TrainConfig, "train", dataclasses.asdict(cfg.train)),
                 "network": lambda: network_form(self.network.value, family, cfg.network_params),
                 "approach": lambda: Form(approaches.get(name).Params, f"approach_params ({name})",
                                          cfg.approach_params, switch_owner=name)}
        for section, make in built.items():
            if section not in keep or section not in self.forms:
                self.forms[section] = make()
                self.boxes[section].children = list(self.forms[section].controls.values()) or [
                    W.HTML(f"<i>{name} has no hyper-parameters</i>")]
        if not keep:
            self.results, self.history = None, []
            self.curves.outputs, self.matrix.outputs = (), ()
            self.progress.value = 0
            self.status.value = f"ready: {name} on {self.benchmark.value}"

    @property
    def params(self) -> dict[str, W.Widget]:
        """The approach's controls (field -> widget)."""
        return self.forms["approach"].controls

    @property
    def runs(self) -> list[Run]:
        """The finished runs of the session, in the table's order."""
        return self.session.runs

    def config(self) -> ExperimentConfig:
        """The ExperimentConfig the controls describe; a bad value raises ConfigError."""
        return ExperimentConfig(benchmark=self.benchmark.value, approach=self.approach.value,
                                network=self.network.value, seed=self.seed.value, device=self.device,
                                data_dir=self.data_dir, approach_params=self.forms["approach"].changed(),
                                benchmark_params=self.forms["benchmark"].changed(),
                                network_params=self.forms["network"].typed(),
                                train=TrainConfig(**self.forms["train"].typed()),
                                output_dir=str(self.results_dir or self.out_dir / "runs"))

    # -- running --
    def start(self) -> None:
        """The Run button: `run` in a background thread (nothing when one is running)."""
        self.runner.start(self.run)

    def stop(self) -> None:
        """The Stop button: training ends after the current batch; finished tasks are kept."""
        self.runner.stop()
        self.status.value = line("stopping after the current batch ...")

    def wait(self, timeout: float | None = None) -> None:
        """Block until a run started by start() has ended."""
        self.runner.wait(timeout)

    def run(self) -> Results | None:
        """Train the configuration of the controls (or replay it); errors go to the status line."""
        self.runner.stopper.clear()
        self._busy(True)
        try:
            return self._run()
        except Exception as err:  # the widget is the user's console: one line, never a traceback
            self.status.value = line(f"error: {one_line(err)}", "#b00020")
            return None
        finally:
            self._busy(False)

    def _busy(self, busy: bool) -> None:
        self.run_button.disabled = busy
        self.stop_button.disabled = not busy
        for w in (self.benchmark, self.approach, self.network, self.seed):
            w.disabled = busy

    def _run(self) -> Results | None:
        cfg = self.config()
        run = self.session.cached(cfg)
        if run is not None:
            return self._replay(run)
        if not self.train_enabled:
            self.status.value = line("training disabled (train=False): nothing cached for this configuration")
            return None
        return self._train(cfg)

    def _replay(self, run: Run) -> Results:
        self.results = run.results
        self.history = [dict(r, task=t) for t, h in enumerate(run.results.history) for r in h]
        if run.images:  # drawn before in this session: no matplotlib at all
            self.curves.outputs, self.matrix.outputs = run.images["curves"], run.images["matrix"]
        else:
            self.draw(final=True)
            run.images = {"curves": self.curves.outputs, "matrix": self.matrix.outputs}
        self.progress.max = self.progress.value = 1
        self._add(run)
        self.status.value = line(f"replayed from the cache: {summary(run.results)}")
        return run.results

    def _train(self, cfg: ExperimentConfig) -> Results:
        self.status.value = line(f"loading {cfg.benchmark} ...")
        if self.results_dir is not None:  # where the run is saved: checked before it trains
            check_output_dir(self.results_dir, "results_dir")
        approach, tasks, self.results = self.runner.prepare(cfg)
        self.progress.max, self.progress.value, self.history = len(tasks) * cfg.train.epochs, 0, []
        start = time.perf_counter()
        view = LiveView(self, cfg.train.epochs, len(tasks))
        stopped = self.runner.train(approach, tasks, self.results, Observers(view, *self.observers))
        seconds = time.perf_counter() - start
        if stopped:
            self.draw(final=True)
            done = self.results.completed_tasks
            self.status.value = line(f"stopped: {done} of {len(tasks)} tasks finished and kept "
                                     f"({seconds:.1f} s); stopped runs do not join the table")
            return self.results
        run = Run(cfg, self.results, seconds, {"curves": self.curves.outputs, "matrix": self.matrix.outputs})
        self.session.finished(run)
        self._add(run)
        self.progress.value = self.progress.max
        self.status.value = line(f"done in {seconds:.1f} s: {summary(self.results)}")
        return self.results

    # -- drawing and comparing --
    def draw(self, final: bool) -> None:
        """Redraw the training curves (and, when `final`, the accuracy matrix of the current run)."""
        start = time.perf_counter()
        if self.history:
            show_figure(self.curves, plot_history(self.history), "training curves")
        if final and self.results is not None and self.results.completed_tasks:
            show_figure(self.matrix, plots.plot_accuracy_matrix(self.results), "accuracy matrix")
        self.draws += 1
        self.last_draw = time.perf_counter()
        self.draw_seconds = self.last_draw - start

    def _add(self, run: Run) -> None:
        if not self.session.add(run):
            return  # already in the table and the overlay
        table = self.table().to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-",
                                     classes="dwa-runs", border=0)
        self.compare_table.value = TABLE_CSS + table
        overlay = plot_overlay({f"run {i + 1}": r.results for i, r in enumerate(self.runs)})
        show_figure(self.overlay, overlay, "runs overlaid")

    def table(self):
        """The session's runs as a DataFrame (session.Session.table)."""
        return self.session.table()

    def export(self, path=None) -> Path:
        """Write the session table as CSV (default out_dir/explorer_runs.csv); returns the path."""
        return self.session.export(Path(path) if path else self.out_dir / "explorer_runs.csv")

    def _export_clicked(self) -> None:
        try:
            self.status.value = line(f"table written to {self.export().resolve()}")
        except OSError as err:
            self.status.value = line(f"error: {one_line(err)}", "#b00020")


def summary(res: Results) -> str:
    """One line: final average accuracy and backward transfer of a run."""
    acc = res.acc_matrix()
    return (f"final average accuracy {metrics.average_accuracy(acc):.3f}, "
            f"BWT {metrics.backward_transfer(acc):+.3f}")


def line(text: str, colour: str = "inherit") -> str:
    """`text` as the status line's HTML, escaped, in `colour`."""
    return f'<span style="color:{colour}">{html.escape(text)}</span>'


def explorer(**kwargs) -> Explorer:
    """Explorer(**kwargs)."""
    return Explorer(**kwargs)
