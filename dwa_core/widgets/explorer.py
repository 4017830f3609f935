"""The Explorer: the layout that joins the controls (controls.py), the runner (runner.py: the one task
loop in a background thread, Stop as an observer, a checkpoint after each task so that Resume
continues a stopped run), what it shows while training (live.py, panels.py), the session's
comparison (session.py, labels.py) and the tool row (tools.py). Defaults are a profile's
(`profiles.profile_config`): "smoke" made smaller by SMALL, under which every approach learns, or
"paper" when its data is here. Nothing trains until Run is clicked, so under papermill the
explorer only renders."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import ipywidgets as W

from dwa_core import approaches, data, models, plots
from dwa_core.config import ExperimentConfig, TrainConfig
from dwa_core.fields import docs
from dwa_core.files import check_output_dir
from dwa_core.observers import Observer, Observers
from dwa_core.profiles import PROFILES, profile_config
from dwa_core.results import Results
from dwa_core.widgets import availability, panels
from dwa_core.widgets.controls import Form, labelled, network_form
from dwa_core.widgets.drawing import Figures, plot_history, plot_overlay
from dwa_core.widgets.labels import run_labels
from dwa_core.widgets.live import LiveView, error_html, line, summary
from dwa_core.widgets.runner import Runner, resumable
from dwa_core.widgets.session import Run, Session
from dwa_core.widgets.tools import ToolMethods, Tools

# On top of the smoke profile, so a run takes seconds on a laptop (every approach still learns:
# measured in tests/test_widgets.py). Benchmark keys apply where the benchmark has the field.
SMALL = {"benchmark_params": {"per_class": 50}, "train": {"epochs": 5, "batch_size": 16},
         "approach_params": {"dwa": {"curriculum": "linear:3:0.2"}}}
NETWORK = {"smoke": "mlp", "paper": "alexnet"}  # the network of each profile's benchmark
STYLE = {"description_width": "initial"}
TABLE_CSS = ("<style>.dwa-runs th, .dwa-runs td {padding: 2px 10px; text-align: right}"
             ".dwa-runs tbody tr:nth-child(odd) {background: rgba(127, 127, 127, 0.08)}</style>")
GRID = W.Layout(grid_template_columns="repeat(3, minmax(0, 1fr))", grid_gap="2px 12px")
SECTIONS = ("benchmark", "train", "network", "approach")


class Explorer(ToolMethods):
    """Build with Explorer(); `.widget` is the box to display. `run()` trains synchronously (tests,
    scripts); the Run button trains in a background thread so Stop stays clickable. `profile`:
    "smoke" or "paper" (the paper's settings; smoke, said in the status line, when its data is
    missing). `observers`: extra observers (observers.Observer) of every training it starts."""

    def __init__(self, benchmark: str | None = None, approach: str = "hat", seed: int = 0, results_dir=None,
                 out_dir="_out", train: bool = True, device: str = "cpu", data_dir=None,
                 profile: str = "smoke"):
        self.train_enabled, self.device, self.data_dir = train, device, data_dir
        self.profile, self.note = availability.usable_profile(profile, data_dir)
        self.results_dir = Path(results_dir) if results_dir else None
        self.out_dir = Path(out_dir)
        self.session, self.runner = Session(self.results_dir), Runner()
        self.observers: list[Observer] = []
        self.results: Results | None = None
        self.stopped: ExperimentConfig | None = None  # the config of a stopped run, for Resume
        self.tasks, self.panel_kind = [], None  # of the run being trained (the mask panel's)
        self.history: list[dict] = []
        self.figures = Figures()
        self.draws, self.last_draw, self.draw_seconds = 0, 0.0, 0.0
        self.forms: dict[str, Form] = {}
        self._make_controls(benchmark or PROFILES[self.profile]["benchmark"], approach, seed)
        self.tools = Tools(self)
        self._rebuild()
        self.widget = W.VBox([
            W.HBox([self.benchmark, self.approach, self.network, self.seed]), self.sections,
            W.HBox([self.run_button, self.stop_button, self.resume_button, self.progress, self.eta]),
            self.status, W.HBox([self.curves, self.matrix]), self.panel,
            W.HTML("<b>Runs of this session</b> (labelled by what differs from run 1)"), self.compare_table,
            self.overlay, self.tools.widget])
        self.widget.add_class("dwa-explorer")

    def _make_controls(self, benchmark: str, approach: str, seed: int) -> None:
        top = docs(ExperimentConfig)
        dropdown = lambda options, value, name: W.Dropdown(  # noqa: E731
            options=options, value=value, style=STYLE, **labelled(name, top[name]))
        self.benchmark = dropdown(availability.dropdown_options(data.names(), self.data_dir), benchmark,
                                  "benchmark")
        self.approach = dropdown(approaches.names(), approach, "approach")
        self.network = dropdown(list(models.ARCHITECTURES), NETWORK[self.profile], "network")
        self.seed = W.BoundedIntText(value=seed, min=0, max=2**31 - 1, style=STYLE,
                                     layout=W.Layout(width="140px"), **labelled("seed", top["seed"]))
        self.boxes = {k: W.GridBox(layout=GRID) for k in SECTIONS}
        self.sections = W.Tab(children=list(self.boxes.values()))
        for i, k in enumerate(self.boxes):
            self.sections.set_title(i, k)
        self.run_button = W.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.resume_button = W.Button(description="Resume", icon="forward", disabled=True,
                                      tooltip="continue the stopped run from its next task")
        self.progress = W.IntProgress(value=0, min=0, max=1, description="progress", style=STYLE)
        self.eta, self.status = W.HTML(), W.HTML(value="ready: nothing trained yet")
        self.eta.add_class("dwa-eta")
        self.status.add_class("dwa-status")  # where the browser tests read it
        self.curves, self.matrix, self.overlay = W.Output(), W.Output(), W.Output()
        self.panel = W.HBox([])
        self.panel.add_class("dwa-panel")
        self.compare_table = W.HTML()
        self.compare_table.add_class("dwa-runs")
        self.benchmark.observe(lambda _: self._rebuild(), names="value")
        self.approach.observe(lambda _: self._rebuild(), names="value")
        self.network.observe(lambda _: self._rebuild(keep=("benchmark", "train", "approach")), names="value")
        self.seed.observe(lambda _: self.tools.refresh(), names="value")
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.resume_button.on_click(lambda _: self.start(resume=True))

    # -- controls --
    def profile_config(self) -> ExperimentConfig:
        """The defaults of the current benchmark/approach: the profile's (profiles.py), the smoke
        profile made smaller by SMALL."""
        cfg = profile_config(self.profile, self.approach.value, self.seed.value, self.device, self.data_dir)
        if self.profile != "smoke":
            return cfg.replace(benchmark=self.benchmark.value)
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
                for w in self.forms[section].controls.values():
                    w.observe(lambda _: self.tools.refresh(), names="value")
        self.tools.refresh()
        if not keep:
            self.results, self.history = None, []
            self.clear_figures()
            self.progress.value = 0
            text = f"ready: {name} on {self.benchmark.value}"
            self.status.value = line(f"{text}; {self.note}" if self.note else text)

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
    def start(self, resume: bool = False) -> None:
        """The Run (Resume) button: `run` in a background thread (nothing when one is running)."""
        self.runner.start(lambda: self.run(resume))

    def stop(self) -> None:
        """The Stop button: training ends after the current batch; finished tasks are kept."""
        self.runner.stop()
        self.status.value = line("stopping after the current batch ...")

    def wait(self, timeout: float | None = None) -> None:
        """Block until a run started by start() has ended."""
        self.runner.wait(timeout)

    def run(self, resume: bool = False) -> Results | None:
        """Train the configuration of the controls (or replay it; with `resume`, continue the
        stopped run from its checkpoint); errors go to the status line and clear the figures."""
        self.runner.stopper.clear()
        self._busy(True)
        try:
            return self._resume() if resume else self._run()
        except Exception as err:  # the widget is the user's console: never a traceback
            self.clear_figures()  # the previous run's figures would read as this one's
            self.status.value = error_html(err, self.data_dir)
            return None
        finally:
            self._busy(False)

    def _busy(self, busy: bool) -> None:
        self.run_button.disabled = busy
        self.stop_button.disabled = not busy
        self.resume_button.disabled = busy or self.stopped is None
        for w in (self.benchmark, self.approach, self.network, self.seed):
            w.disabled = busy

    def _run(self) -> Results | None:
        cfg = self.config()
        self.stopped = None
        run = self.session.cached(cfg)
        if run is not None:
            return self._replay(run)
        if not self.train_enabled:
            self.status.value = line("training disabled (train=False): nothing cached for this configuration")
            return None
        return self._train(cfg)

    def _resume(self) -> Results | None:
        cfg = self.stopped
        if cfg is None or not resumable(cfg):
            self.status.value = line("nothing to resume: no stopped run with a checkpoint")
            return None
        return self._train(cfg, resume=True)

    def _replay(self, run: Run) -> Results:
        self.results = run.results
        self.history = [dict(r, task=t) for t, h in enumerate(run.results.history) for r in h]
        self.clear_figures()
        self.draw(final=True)
        self.progress.max = self.progress.value = 1
        self._add(run)
        self.status.value = line(f"replayed from the cache: {summary(run.results)}")
        return run.results

    def _train(self, cfg: ExperimentConfig, resume: bool = False) -> Results:
        self.status.value = line(f"loading {cfg.benchmark} ...")
        if self.results_dir is not None:  # where the run is saved: checked before it trains
            check_output_dir(self.results_dir, "results_dir")
        self.clear_figures()
        approach, tasks, self.results = self.runner.prepare(cfg, resume)
        done = self.results.completed_tasks
        self.progress.max, self.progress.value = len(tasks) * cfg.train.epochs, done * cfg.train.epochs
        self.history = [dict(r, task=t) for t, h in enumerate(self.results.history) for r in h]
        self.tasks, self.panel_kind = tasks, panels.panel_kind(cfg.approach)
        view = LiveView(self, cfg.train.epochs, len(tasks), self.progress.value)
        stopped = self.runner.train(approach, tasks, self.results, Observers(view, *self.observers),
                                    Path(cfg.output_dir) / cfg.run_name())
        seconds = float(sum(self.results.task_seconds))
        if stopped:
            self.stopped, done = cfg, self.results.completed_tasks
            self.draw(final=True)
            self.status.value = line(f"stopped: {done} of {len(tasks)} tasks finished and kept "
                                     f"({seconds:.1f} s); Resume continues from task {done + 1}; "
                                     "stopped runs do not join the table")
            return self.results
        self.stopped = None
        run = Run(cfg, self.results, seconds)
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
            history = list(self.history)
            self.figures.show("curves", self.curves, lambda: plot_history(history))
        if final and self.results is not None and self.results.completed_tasks:
            results = self.results
            self.figures.show("matrix", self.matrix, lambda: plots.plot_accuracy_matrix(results))
        self.draws += 1
        self.last_draw = time.perf_counter()
        self.draw_seconds = self.last_draw - start

    def draw_panel(self, t: int) -> None:
        """The mask panel after task t (panels.py): DWA's masks and embedding, HAT's unit masks."""
        if self.panel_kind is None:
            return
        made = panels.panel_figures(self.panel_kind, self.runner.approach, self.tasks, t,
                                    self.benchmark.value, self.seed.value)
        outputs = [self.figures.show(name, W.Output(), lambda fig=fig: fig) for name, fig in made.items()]
        self.panel.children = outputs

    def clear_figures(self) -> None:
        """Empty every figure of the current run (curves, matrix, mask panel)."""
        self.curves.outputs, self.matrix.outputs, self.panel.children = (), (), []
        self.figures.drop("curves", "matrix", "dwa_masks", "dwa_embedding", "hat_masks")

    def _add(self, run: Run) -> None:
        if not self.session.add(run):
            return  # already in the table and the overlay
        table = self.table()
        table["seconds"] = [f"{s:.1f} s" for s in table["seconds"]]
        self.compare_table.value = TABLE_CSS + table.to_html(
            index=False, float_format=lambda v: f"{v:.3f}", na_rep="-", classes="dwa-runs", border=0)
        labelled_runs = dict(zip(run_labels([r.config for r in self.runs]), [r.results for r in self.runs]))
        self.figures.show("overlay", self.overlay, lambda: plot_overlay(labelled_runs))

    def table(self):
        """The session's runs as a DataFrame (session.Session.table)."""
        return self.session.table()


def explorer(**kwargs) -> Explorer:
    """Explorer(**kwargs)."""
    return Explorer(**kwargs)
