"""The shared start of every notebook in notebooks/: one call after the parameters cell,

    nb = notebook.setup("01_quickstart", profile, seeds, device, data_dir, results_dir, figures_dir,
                        metrics_path)

checks the parameters (a bad one stops there with one line, `walkthrough.ParameterError`) and
returns what the cells share: output paths, the metrics record, `save` for figures, `run` for the
profile's runs and `finish` for the metrics file.

Relative paths (`_out/...`) are taken from the notebook's folder when the kernel runs in a folder
named notebooks/ (JupyterLab starts kernels beside the notebook), and otherwise from the notebooks/
folder of the checkout dwa_core is imported from: `papermill notebooks/01_quickstart.ipynb out.ipynb`
started in the repository root (or anywhere else) writes into notebooks/_out/, as in JupyterLab."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from dwa_core import figures, plots, walkthrough

CHECKOUT = Path(__file__).resolve().parents[1]


def notebooks_dir() -> Path:
    """The folder relative paths start from: the current one when it is a notebooks/ folder (or
    dwa_core is installed outside a checkout), else the notebooks/ of dwa_core's checkout."""
    here, mine = Path.cwd(), CHECKOUT / "notebooks"
    return here if here.name == "notebooks" or not mine.is_dir() else mine


def resolve(path) -> Path | None:
    """`path` as an absolute Path, a relative one taken from notebooks_dir(); None stays None."""
    if path is None:
        return None
    path = Path(path).expanduser()
    return path if path.is_absolute() else notebooks_dir() / path


@dataclass
class Notebook:
    """What the cells of one notebook share (made by `setup`)."""

    name: str
    folder: Path  # where relative paths start (notebooks_dir() at setup)
    profile: str
    seeds: list[int]
    device: str
    data_dir: str | None
    results_dir: Path | None  # runs cached (resumed / replayed) here; None: nothing saved
    figures_dir: Path
    metrics_path: Path
    record: dict = field(default_factory=dict)  # the metrics written by finish()

    @property
    def out_dir(self) -> Path:
        """notebooks/_out: where a notebook writes what is not a figure or its metrics."""
        return self.folder / "_out"

    @property
    def root(self) -> Path:
        """The folder above notebooks/: the checkout's root, where tables/ and docs/ live."""
        return self.folder.parent

    @property
    def command(self) -> str:
        """How the figures were made, for their JSON sidecars."""
        return f"papermill -p profile {self.profile} (notebook {self.name!r})"

    def save(self, fig, stem: str, config):
        """Write figures_dir/<stem>_<profile>.png/.pdf/.json (plots.save_figure); returns fig, so a
        cell can end with it and show it."""
        plots.save_figure(fig, self.figures_dir / f"{stem}_{self.profile}", config, self.command)
        return fig

    def run(self, names, **kwargs) -> dict:
        """{approach: [Results per seed]} of the profile's runs (figures.run_suite)."""
        return figures.run_suite(self.profile, names, self.seeds, self.results_dir, self.device,
                                 self.data_dir, **kwargs)

    def finish(self):
        """Write the record to metrics_path; returns its short, rounded view (walkthrough.summary)."""
        self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        self.metrics_path.write_text(json.dumps(self.record, indent=1, default=float))
        print(f"all metrics: {self.metrics_path}")
        return walkthrough.summary(self.record)


def setup(name: str, profile, seeds, device="cpu", data_dir=None, results_dir=None,
          figures_dir="_out/figures", metrics_path=None) -> Notebook:
    """Check a notebook's parameters (ParameterError: one line) and return its Notebook; relative
    paths are resolved from notebooks/ (see the module docstring). Library warnings are shown."""
    results_dir = resolve(results_dir)
    profile, seeds = walkthrough.check_parameters(profile=profile, seeds=seeds, device=device,
                                                  data_dir=data_dir, results_dir=results_dir)
    _show_warnings()
    return Notebook(name, notebooks_dir(), profile, seeds, device, data_dir, results_dir,
                    resolve(figures_dir), resolve(metrics_path or f"_out/{name}.json"),
                    record={"profile": profile, "seeds": list(seeds)})


def readable(frame, digits: int = 3):
    """`frame` rounded, its column names with spaces for underscores: the browser can wrap a long
    header over two lines, so a wide table fits the notebook's width instead of being cut."""
    return frame.round(digits).rename(columns=lambda name: str(name).replace("_", " "))


def normalise_on_save(model, **_) -> None:
    """Jupyter server's pre-save hook (scripts/setup.sh configures it): drop the kernel's
    language_info, which JupyterLab adds to every notebook it saves and git's nbstripout filter
    strips, so that opening and saving a notebook writes the committed file byte for byte."""
    if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
        model["content"].get("metadata", {}).pop("language_info", None)


def _show_warnings() -> None:
    """dwa_core's warnings as one line each in the cell's output (once per kernel)."""
    log = logging.getLogger("dwa_core")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.WARNING)
        log.addHandler(handler)
