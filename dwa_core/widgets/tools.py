"""The explorer's tool row: export the session table (CSV) and the current figures (PNG and SVG),
save and load the configuration (TOML, as the presets: configfile.py) and the equivalent command
line, kept current in a text area as the controls change."""

from __future__ import annotations

from pathlib import Path

import ipywidgets as W

from dwa_core import models
from dwa_core.config import ExperimentConfig
from dwa_core.errors import one_line
from dwa_core.files import load_config_file
from dwa_core.widgets.configfile import cli_command, save_config
from dwa_core.widgets.live import line

CONFIG_FILE = "explorer_config.toml"


class ToolMethods:
    """The Explorer's methods behind the tool row (the Explorer inherits them)."""

    def export(self, path=None) -> Path:
        """Write the session table as CSV (default out_dir/explorer_runs.csv); returns the path."""
        return self.session.export(Path(path) if path else self.out_dir / "explorer_runs.csv")

    def export_figures(self, folder=None) -> list[Path]:
        """Write every figure shown now as PNG and SVG into `folder` (default out_dir/figures)."""
        return self.figures.export(Path(folder) if folder else self.out_dir / "figures")

    def save_config(self, path) -> Path:
        """Write the controls' configuration as TOML (the presets' format) at `path`."""
        return write_config(self, path)

    def load_config(self, path) -> None:
        """Set the controls from a TOML/JSON configuration or preset file (fields it leaves out
        take their dataclass's default)."""
        apply_config(self, read_config(path))
        self.status.value = line(f"loaded {path}")

    def cli_command(self) -> str:
        """The `python -m dwa_core run ...` line of the controls' configuration (configfile.py)."""
        self.tools.refresh()
        return self.tools.cli.value


class Tools:
    """The buttons and boxes of the tool row of explorer `ex`; `widget` is the row."""

    def __init__(self, ex):
        self.ex = ex
        button = lambda text, icon, action: self._button(text, icon, action)  # noqa: E731
        self.path = W.Text(value=str(ex.out_dir / CONFIG_FILE), description="config file",
                           style={"description_width": "initial"}, layout=W.Layout(width="360px"))
        self.cli = W.Textarea(value="", rows=4, layout=W.Layout(width="98%"),
                              placeholder="the equivalent python -m dwa_core run ... command")
        self.cli.add_class("dwa-cli")
        self.widget = W.VBox([
            W.HBox([button("Export table", "download", ex.export),
                    button("Export figures", "image", ex.export_figures),
                    button("Save config", "save", lambda: ex.save_config(self.path.value)),
                    button("Load config", "folder-open", lambda: ex.load_config(self.path.value)),
                    self.path]),
            W.HTML("<b>As a command line</b> (same configuration, same run folder: it resumes a "
                   "stopped run)"), self.cli])

    def _button(self, text: str, icon: str, action) -> W.Button:
        b = W.Button(description=text, icon=icon, layout=W.Layout(width="auto"))
        b.on_click(lambda _: self._do(text, action))
        return b

    def _do(self, text: str, action) -> None:
        """Run a button's action; its result (a path or paths) or its error in the status line."""
        try:
            done = action()
        except (OSError, ValueError) as err:
            self.ex.status.value = line(f"error: {one_line(err)}", "#b00020")
            return
        if done is not None:
            paths = done if isinstance(done, list) else [done]
            self.ex.status.value = line(f"{text.lower()}: {', '.join(str(Path(p).resolve()) for p in paths)}")

    def refresh(self) -> None:
        """The command line of the current controls (a bad value leaves a note instead)."""
        try:
            self.cli.value = cli_command(self.ex.config())
        except ValueError as err:
            self.cli.value = f"# not a valid configuration: {one_line(err)}"


def write_config(ex, path) -> Path:
    """Save the explorer's configuration as TOML at `path` (configfile.save_config)."""
    return save_config(ex.config(), path)


def read_config(path) -> dict:
    """The settings of a TOML/JSON configuration or preset file (comment keys '_...' dropped)."""
    return {k: v for k, v in load_config_file(path).items() if not k.startswith("_")}


def apply_config(ex, values: dict) -> None:
    """Set explorer `ex`'s controls from `values` (a partial ExperimentConfig dict, as a preset):
    validated first; the fields it leaves out take their dataclass's default."""
    ExperimentConfig.from_dict(values)  # a bad file changes no control
    ex.benchmark.value = values.get("benchmark", "split-digits")
    ex.approach.value = values.get("approach", "sgd")
    if values.get("network", "auto") in models.ARCHITECTURES:
        ex.network.value = values["network"]
    ex.seed.value = int(values.get("seed", 0))
    for section, group in (("train", "train"), ("benchmark", "benchmark_params"),
                           ("network", "network_params"), ("approach", "approach_params")):
        ex.forms[section].load(values.get(group, {}))
