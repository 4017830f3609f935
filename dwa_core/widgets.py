"""The explorer: an ipywidgets front end for varying hyper-parameters and comparing runs.

    from dwa_core import widgets
    ex = widgets.Explorer()
    ex.widget          # display it; Run trains in the background, Stop ends after the current batch

Every control is generated from a dataclass: the benchmark's Params, TrainConfig, the approach's
Params and the int/float options of the network class. Fields typed `typing.Literal`, and str
fields that are a fidelity switch (dwa_core.fidelity), become dropdowns; init=False fields are
skipped; tooltips are the fields' own comments. Defaults are the smoke profile of
dwa_core.figures (`profile_config("smoke", approach)`), under which every approach learns.

Figures reach the front end as base64 PNG strings inside Output widgets (raw bytes would be sent
as a binary buffer, which JupyterLab shows as a broken image). Nothing trains until Run is
clicked, so under papermill the explorer only renders. Finished runs join a session table
(`Explorer.table()`), replayed instantly when the same configuration is run again.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import inspect
import io
import threading
import time
import typing
from pathlib import Path

import ipywidgets as W
import numpy as np

from dwa_core import approaches, data, fidelity, metrics, models, numerics, plots
from dwa_core.config import ExperimentConfig, TrainConfig, build_params
from dwa_core.experiment import record_scores
from dwa_core.files import check_output_dir
from dwa_core.results import Results

PROFILE = "smoke"
# On top of the smoke profile, so a run takes seconds on a laptop (every approach still learns:
# measured in tests/test_widgets.py). Benchmark keys apply where the benchmark has the field.
SMALL = {"benchmark_params": {"per_class": 50}, "train": {"epochs": 5, "batch_size": 16},
         "approach_params": {"dwa": {"curriculum": "linear:3:0.2"}}}
NETWORK_DEFAULT = "mlp"
REFERENCES = ("random", "joint")  # HAT's rho needs runs of both on the same benchmark and seed
STYLE = {"description_width": "initial"}
FIELD_STYLE = {"description_width": "130px"}  # the tabs' controls: aligned in a 3-column grid
TABLE_CSS = ("<style>.dwa-runs th, .dwa-runs td {padding: 2px 10px; text-align: right}"
             ".dwa-runs tbody tr:nth-child(odd) {background: rgba(127, 127, 127, 0.08)}</style>")
GRID = W.Layout(grid_template_columns="repeat(3, minmax(0, 1fr))", grid_gap="2px 12px")


# ---- controls from dataclasses -----------------------------------------------------------------
def field_docs(cls: type) -> dict[str, str]:
    """{field: its documentation} as declared with the field (dwa_core.fields.docs), the tooltips."""
    from dwa_core.fields import docs

    return docs(cls)


def choices(owner: str, name: str, hint) -> tuple | None:
    """The fixed values a field takes: its Literal arguments, else (for a str field) the two values
    of its fidelity switch, else None (a free value)."""
    hint = _strip_optional(hint)
    if typing.get_origin(hint) is typing.Literal:
        return typing.get_args(hint)
    if hint is str:
        for switch in fidelity.SWITCHES:
            if (switch.owner, switch.field) == (owner, name):
                return tuple(dict.fromkeys(v for v in (switch.default, switch.original) if v is not None))
    return None


def _strip_optional(hint):
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", None)) \
            and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else hint
    return hint


def _optional(hint) -> bool:
    return type(None) in typing.get_args(hint)


def control(name: str, hint, default, doc: str = "", options: tuple | None = None) -> W.Widget:
    """One control: dropdown (fixed values), checkbox (bool), int/float box, or text (str, and
    optional values where an empty box means None)."""
    kw = dict(description=name, style=FIELD_STYLE, description_allow_html=False,
              tooltip=doc or name, layout=W.Layout(width="auto"))
    base = _strip_optional(hint)
    if options:
        opts = list(options) + ([default] if default not in options else [])
        return W.Dropdown(options=opts, value=default, **kw)
    if base is bool and not _optional(hint):
        return W.Checkbox(value=bool(default), indent=False, **kw)
    if base is int and not _optional(hint):
        return W.IntText(value=int(default), **kw)
    if base is float and not _optional(hint):
        return W.FloatText(value=float(default), **kw)
    return W.Text(value="" if default is None else str(default),
                  placeholder="None" if _optional(hint) else "",
                  continuous_update=False, **kw)


class Form:
    """Controls for the init fields of a dataclass `cls`, with defaults `defaults` (field -> value)."""

    def __init__(self, cls: type, owner: str, defaults: dict | None = None, switch_owner: str | None = None):
        self.cls, self.owner = cls, owner
        hints = typing.get_type_hints(cls)
        docs = field_docs(cls)
        self.defaults = {f.name: f.default if f.default is not dataclasses.MISSING else None
                         for f in dataclasses.fields(cls) if f.init}
        self.defaults.update({k: v for k, v in (defaults or {}).items() if k in self.defaults})
        self.controls = {name: control(name, hints[name], value, docs.get(name, ""),
                                       choices(switch_owner or owner, name, hints[name]))
                         for name, value in self.defaults.items()}

    def values(self) -> dict:
        """Every field's value as typed: text boxes give strings ('' = None), coerced by build_params."""
        out = {}
        for name, w in self.controls.items():
            value = w.value
            if isinstance(w, W.Text) and not isinstance(w, W.Dropdown):
                value = None if value.strip() in ("", "None") else value.strip()
            out[name] = value
        return out

    def typed(self) -> dict:
        """values() coerced and validated by the dataclass (a bad value raises ConfigError)."""
        instance = build_params(self.cls, self.values(), self.owner)
        return {k: getattr(instance, k) for k in self.controls}

    def changed(self) -> dict:
        """The typed fields whose value differs from the dataclass's own defaults."""
        return {k: v for k, v in self.typed().items() if not _same(v, _default_of(self.cls, k))}


def _same(a, b) -> bool:
    return a == b or (a is not None and b is not None and str(a) == str(b))


def network_options(arch: str, family: str) -> dict:
    """{option: default} of the int/float keyword options of the network class (its size)."""
    cls = models.NETWORKS.get(models.network_name(arch, family))
    out = {}
    for p in inspect.signature(cls.__init__).parameters.values():
        if isinstance(p.default, (int, float)) and not isinstance(p.default, bool):
            out[p.name] = p.default
    return out


# ---- figures as the front end needs them ---------------------------------------------------------
def png_base64(fig) -> str:
    """The figure as a base64 PNG string (what Jupyter's display protocol carries), then closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def show_figure(output: W.Output, fig, alt: str = "figure") -> None:
    """Replace what `output` shows by `fig` (works with or without a kernel)."""
    output.outputs = ({"output_type": "display_data", "metadata": {},
                       "data": {"image/png": png_base64(fig), "text/plain": f"<{alt}>"}},)


# ---- the explorer --------------------------------------------------------------------------------
class Stopped(Exception):
    """Raised inside training when Stop was clicked (after the current batch)."""


@dataclasses.dataclass
class Run:
    """A finished (or stopped) run of the session."""

    config: ExperimentConfig
    results: Results
    seconds: float
    images: dict = dataclasses.field(default_factory=dict)  # {output name: its outputs}, for replays


class Explorer:
    """Build with Explorer(); `.widget` is the box to display. `run()` trains synchronously (tests,
    scripts); the Run button trains in a background thread so Stop stays clickable."""

    def __init__(self, benchmark: str = "split-digits", approach: str = "hat", seed: int = 0,
                 results_dir=None, out_dir="_out", train: bool = True, device: str = "cpu", data_dir=None):
        self.train_enabled, self.device, self.data_dir = train, device, data_dir
        self.results_dir = Path(results_dir) if results_dir else None
        self.out_dir = Path(out_dir)
        self.benchmark = W.Dropdown(options=data.names(), value=benchmark, description="benchmark",
                                    style=STYLE)
        self.approach = W.Dropdown(options=approaches.names(), value=approach, description="approach",
                                   style=STYLE)
        self.network = W.Dropdown(options=list(models.ARCHITECTURES), value=NETWORK_DEFAULT,
                                  description="network", style=STYLE)
        self.seed = W.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", style=STYLE,
                                     layout=W.Layout(width="140px"))
        self.boxes = {k: W.GridBox(layout=GRID) for k in ("benchmark", "train", "network", "approach")}
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
        self.runs: list[Run] = []
        self.cache: dict[str, Run] = {}
        self.results: Results | None = None
        self.draws = 0
        self.history: list[dict] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_curve_draw, self._draw_seconds = 0.0, 0.0
        self.forms: dict[str, Form] = {}
        self.benchmark.observe(lambda _: self._rebuild(), names="value")
        self.approach.observe(lambda _: self._rebuild(), names="value")
        self.network.observe(lambda _: self._rebuild(keep=("benchmark", "train", "approach")), names="value")
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.export_button.on_click(lambda _: self._export_clicked())
        self._rebuild()
        self.widget = W.VBox([
            W.HBox([self.benchmark, self.approach, self.network, self.seed]), self.sections,
            W.HBox([self.run_button, self.stop_button, self.progress]), self.status,
            W.HBox([self.curves, self.matrix]),
            W.HTML("<b>Runs of this session</b> (differences from run 1)"), self.compare_table,
            self.export_button, self.overlay])
        self.widget.add_class("dwa-explorer")

    # -- controls --
    def profile_config(self) -> ExperimentConfig:
        """The defaults of the current benchmark/approach: the smoke profile of dwa_core.figures,
        made smaller by SMALL."""
        from dwa_core.figures import profile_config

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
        cfg = self.profile_config()
        family = approaches.get(self.approach.value).family
        spec = data.get_spec(self.benchmark.value)
        built = {"benchmark": lambda: Form(spec.Params, "benchmark", cfg.benchmark_params),
                 "train": lambda: Form(TrainConfig, "train", dataclasses.asdict(cfg.train)),
                 "network": lambda: self._network_form(family, cfg.network_params),
                 "approach": lambda: Form(approaches.get(self.approach.value).Params,
                                          f"approach_params ({self.approach.value})", cfg.approach_params,
                                          switch_owner=self.approach.value)}
        for name, make in built.items():
            if name not in keep or name not in self.forms:
                self.forms[name] = make()
                self.boxes[name].children = list(self.forms[name].controls.values()) or [
                    W.HTML(f"<i>{self.approach.value} has no hyper-parameters</i>")]
        if not keep:
            self.results, self.history = None, []
            self.curves.outputs, self.matrix.outputs = (), ()
            self.progress.value = 0
            self.status.value = f"ready: {self.approach.value} on {self.benchmark.value}"

    def _network_form(self, family: str, defaults: dict) -> Form:
        options = network_options(self.network.value, family)
        fields = [(k, type(v), dataclasses.field(default=v)) for k, v in options.items()]
        cls = dataclasses.make_dataclass(f"{self.network.value}_{family}", fields, frozen=True)
        return Form(cls, "network", defaults)

    @property
    def params(self) -> dict[str, W.Widget]:
        """The approach's controls (field -> widget)."""
        return self.forms["approach"].controls

    def config(self) -> ExperimentConfig:
        """The ExperimentConfig the controls describe; a bad value raises ConfigError."""
        approach_values = self.forms["approach"].changed()
        bench = self.forms["benchmark"].changed()
        train = TrainConfig(**self.forms["train"].typed())
        return ExperimentConfig(benchmark=self.benchmark.value, approach=self.approach.value,
                                network=self.network.value, seed=self.seed.value, device=self.device,
                                data_dir=self.data_dir, approach_params=approach_values,
                                benchmark_params=bench, network_params=self.forms["network"].typed(),
                                train=train, output_dir=str(self.results_dir or self.out_dir / "runs"))

    # -- running --
    def start(self) -> None:
        """The Run button: validate, then train in a background thread (or replay at once)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self.run, daemon=True, name="dwa-explorer")
        self._thread.start()

    def stop(self) -> None:
        """The Stop button: training ends after the current batch; finished tasks are kept."""
        self._stop.set()
        self.status.value = _line("stopping after the current batch ...")

    def wait(self, timeout: float | None = None) -> None:
        """Block until a run started by start() has ended."""
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> Results | None:
        """Train the configuration of the controls (or replay it); errors go to the status line."""
        self._stop.clear()
        self._busy(True)
        try:
            return self._run()
        except Exception as err:  # the widget is the user's console: one line, never a traceback
            self.status.value = _line(f"error: {_one_line(err)}", "#b00020")
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
        run = self.cached(cfg)
        if run is not None:
            self.results = run.results
            self.history = [dict(r, task=t) for t, h in enumerate(run.results.history) for r in h]
            if run.images:  # drawn before in this session: no matplotlib at all
                self.curves.outputs, self.matrix.outputs = run.images["curves"], run.images["matrix"]
            else:
                self._draw(final=True)
                run.images = {"curves": self.curves.outputs, "matrix": self.matrix.outputs}
            self.progress.max = self.progress.value = 1
            self._add(run)
            self.status.value = _line(f"replayed from the cache: {self._summary(run.results)}")
            return run.results
        if not self.train_enabled:
            self.status.value = _line("training disabled (train=False): nothing cached for this "
                                      "configuration")
            return None
        return self._train(cfg)

    def cached(self, cfg: ExperimentConfig) -> Run | None:
        """A finished run of `cfg` from this session or from results_dir, else None."""
        if cfg.key() in self.cache:
            return self.cache[cfg.key()]
        if self.results_dir is not None:
            from dwa_core.experiment import RESULTS

            path = self.results_dir / cfg.run_name() / RESULTS
            if path.exists():
                res = Results.load(path)
                if res.finished and numerics.mismatch(res.numerics) is None:  # never other numerics
                    self.cache[cfg.key()] = Run(cfg, res, float(sum(res.task_seconds)))
                    return self.cache[cfg.key()]
        return None

    def _train(self, cfg: ExperimentConfig) -> Results:
        from dwa_core.experiment import build_approach, resolve_device, validate

        self.status.value = _line(f"loading {cfg.benchmark} ...")
        plan, device = validate(cfg), resolve_device(cfg.device)
        if self.results_dir is not None:  # where the run is saved: checked before it trains
            check_output_dir(self.results_dir, "results_dir")
        bench = data.load_benchmark(cfg, device)
        approach = build_approach(cfg, plan, bench, device)
        n_tasks = len(bench.tasks)
        self.progress.max, self.progress.value = n_tasks * cfg.train.epochs, 0
        self.results = Results.empty(cfg.to_dict(), [t.name for t in bench.tasks], bench.task_classes,
                                     str(device))
        self.history = []
        after_step = approach.after_step

        def checked_step(t):
            after_step(t)
            if self._stop.is_set():
                raise Stopped

        approach.after_step = checked_step
        approach.on_epoch = lambda t, epoch, row: self._on_epoch(t, row, cfg)
        start = time.perf_counter()
        stopped = False
        for t in range(n_tasks):
            self.status.value = _line(f"training task {t + 1}/{n_tasks} ({bench.tasks[t].name}) ...")
            task_start = time.perf_counter()
            try:
                history = approach.fit(t, bench.tasks[t], bench.tasks[:t])
            except Stopped:
                stopped = True
                break
            record_scores(approach, bench.tasks, t, self.results)
            self.results.history.append(history)
            self.results.task_seconds.append(time.perf_counter() - task_start)
            self.results.completed_tasks = t + 1
            self.progress.value = (t + 1) * cfg.train.epochs
            self._draw(final=True)
        seconds = time.perf_counter() - start
        if stopped:
            done = self.results.completed_tasks
            self._draw(final=True)
            self.status.value = _line(f"stopped: {done} of {n_tasks} tasks finished and kept "
                                      f"({seconds:.1f} s); stopped runs do not join the table")
            return self.results
        run = Run(cfg, self.results, seconds, {"curves": self.curves.outputs, "matrix": self.matrix.outputs})
        self.cache[cfg.key()] = run
        if self.results_dir is not None:
            from dwa_core.experiment import RESULTS

            self.results.save(self.results_dir / cfg.run_name() / RESULTS)
        self._add(run)
        self.progress.value = self.progress.max
        self.status.value = _line(f"done in {seconds:.1f} s: {self._summary(self.results)}")
        return self.results

    def _on_epoch(self, t: int, row: dict, cfg: ExperimentConfig) -> None:
        self.history.append(dict(row, task=t))
        self.progress.value = min(self.progress.max, t * cfg.train.epochs + len(
            [r for r in self.history if r["task"] == t]))
        self.status.value = _line(f"task {t + 1} epoch {row['epoch'] + 1}: train loss "
                                  f"{row['train_loss']:.3f}, valid acc {row['valid_acc']:.3f}")
        # live, but drawing never takes more than about a quarter of the time (matplotlib is slow)
        if time.perf_counter() - self._last_curve_draw > max(0.5, 3 * self._draw_seconds):
            self._draw(final=False)

    @staticmethod
    def _summary(res: Results) -> str:
        acc = res.acc_matrix()
        return (f"final average accuracy {metrics.average_accuracy(acc):.3f}, "
                f"BWT {metrics.backward_transfer(acc):+.3f}")

    # -- drawing --
    def _draw(self, final: bool) -> None:
        start = time.perf_counter()
        if self.history:
            show_figure(self.curves, plot_history(self.history), "training curves")
        if final and self.results is not None and self.results.completed_tasks:
            show_figure(self.matrix, plots.plot_accuracy_matrix(self.results), "accuracy matrix")
        self.draws += 1
        self._last_curve_draw = time.perf_counter()
        self._draw_seconds = self._last_curve_draw - start

    # -- comparing --
    def _add(self, run: Run) -> None:
        if any(r.config.key() == run.config.key() for r in self.runs):
            return  # already in the table and the overlay
        self.runs.append(run)
        table = self.table().to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-",
                                     classes="dwa-runs", border=0)
        self.compare_table.value = TABLE_CSS + table
        if len(self.runs) >= 1:
            overlay = plot_overlay({f"run {i + 1}": r.results for i, r in enumerate(self.runs)})
            show_figure(self.overlay, overlay, "runs overlaid")

    def table(self):
        """The session's runs as a DataFrame: what differs from run 1, final average accuracy, BWT,
        forgetting, HAT's rho (mean over tasks; when random and joint runs of the same benchmark
        and seed exist), wall time."""
        import pandas as pd

        first = _flat(self.runs[0].config) if self.runs else {}
        rows = []
        for i, run in enumerate(self.runs):
            acc = run.results.acc_matrix()
            flat = _flat(run.config)
            diff = {k: v for k, v in flat.items() if not _same(v, first.get(k))}
            rho = self._rho(run)
            rows.append({"run": i + 1, "approach": run.config.approach,
                         "differs from run 1": ", ".join(f"{k}={v}" for k, v in diff.items()) or "-",
                         "final avg acc": metrics.average_accuracy(acc),
                         "BWT": metrics.backward_transfer(acc),
                         "forgetting": metrics.forgetting(acc), "rho": rho, "seconds": round(run.seconds, 1)})
        return pd.DataFrame(rows, columns=["run", "approach", "differs from run 1", "final avg acc", "BWT",
                                           "forgetting", "rho", "seconds"])

    def _rho(self, run: Run) -> float:
        refs = {}
        for other in self.runs:
            c = other.config
            same = (c.benchmark, c.seed, c.benchmark_params) == (run.config.benchmark, run.config.seed,
                                                                 run.config.benchmark_params)
            if c.approach in REFERENCES and same:
                refs[c.approach] = other.results.acc_matrix()
        if set(refs) != set(REFERENCES):
            return float("nan")
        rho = metrics.forgetting_ratio(run.results.acc_matrix(), refs["random"], refs["joint"])
        return float(np.mean(rho))

    def export(self, path=None) -> Path:
        """Write the session table as CSV (default out_dir/explorer_runs.csv); returns the path."""
        path = Path(path) if path else self.out_dir / "explorer_runs.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.table().to_csv(path, index=False)
        return path

    def _export_clicked(self) -> None:
        try:
            self.status.value = _line(f"table written to {self.export().resolve()}")
        except OSError as err:
            self.status.value = _line(f"error: {_one_line(err)}", "#b00020")


def _default_of(cls: type, name: str):
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    return f.default if f.default is not dataclasses.MISSING else None


def _flat(cfg: ExperimentConfig) -> dict:
    """The fields of a config that change the numbers, flattened to 'section.field'."""
    d = cfg.to_dict()
    out = {k: d[k] for k in ("benchmark", "approach", "network", "seed")}
    for section in ("train", "approach_params", "benchmark_params", "network_params"):
        for k, v in (d[section] or {}).items():
            out[f"{section.split('_')[0]}.{k}"] = v
    return out


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    msg = text[0] if text else ""
    return msg if type(err).__name__ == "ConfigError" else f"{type(err).__name__}: {msg}"


def _line(text: str, colour: str = "inherit") -> str:
    return f'<span style="color:{colour}">{html.escape(text)}</span>'


def plot_history(history: list[dict]):
    """Per-epoch training curves: train/valid loss and valid accuracy, one colour per task."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(6.4, 2.6), dpi=plots.DPI)
    x = np.arange(1, len(history) + 1)
    tasks = sorted({r["task"] for r in history})
    for t in tasks:
        idx = [i for i, r in enumerate(history) if r["task"] == t]
        colour = f"C{t % 10}"
        dots = {"marker": "o", "ms": 3} if len(idx) <= 30 else {}  # a 1-epoch task is a dot, not nothing
        left.plot(x[idx], [history[i]["train_loss"] for i in idx], color=colour, label=f"task {t + 1}",
                  **dots)
        left.plot(x[idx], [history[i]["valid_loss"] for i in idx], color=colour, ls="--", **dots)
        right.plot(x[idx], [history[i]["valid_acc"] for i in idx], color=colour, **dots)
    left.set_title("loss (solid train, dashed valid)", fontsize=8)
    right.set_title("validation accuracy", fontsize=8)
    right.set_ylim(0, 1.02)
    for ax in (left, right):
        ax.set_xlabel("epoch (all tasks)", fontsize=8)
        plots.integer_ticks(ax)
        ax.tick_params(labelsize=7)
    left.legend(fontsize=6)
    fig.tight_layout()
    return fig


def plot_overlay(runs: dict):
    """Fig. 5-style overlay of several runs: one panel per task u, accuracy of u after each learned
    task t >= u, one line per run. `runs`: {label: Results}."""
    import matplotlib.pyplot as plt

    first = next(iter(runs.values()))
    n = first.n_tasks
    fig, axes = plt.subplots(1, n, figsize=(1.9 * n + 0.8, 2.4), dpi=plots.DPI, sharey=True, squeeze=False)
    for i, (label, res) in enumerate(runs.items()):
        acc = res.acc_matrix()
        for u, ax in enumerate(axes[0][: res.n_tasks]):
            ts = np.arange(u, res.completed_tasks)
            ax.plot(ts + 1, acc[ts, u], marker="o", ms=3, color=f"C{i % 10}", label=label)
    for u, ax in enumerate(axes[0]):
        ax.set_title(first.task_names[u], fontsize=8)
        ax.set_xlim(0.5, n + 0.5)
        ax.set_xticks(range(1, n + 1))
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("learned tasks", fontsize=7)
    axes[0][0].set_ylabel("test accuracy", fontsize=8)
    axes[0][-1].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    return fig


def explorer(**kwargs) -> Explorer:
    """Explorer(**kwargs)."""
    return Explorer(**kwargs)
