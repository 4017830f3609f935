"""The explorer: an ipywidgets front end for varying hyper-parameters and comparing runs.

    from dwa_core import widgets
    ex = widgets.Explorer()
    ex.widget          # display it; Run trains in the background, Stop ends after the current batch

One module per concern, each importable alone:

    controls.py   the controls generated from the dataclasses (Form, field_docs, choices)
    runner.py     training through the one task loop in a background thread; Stop is an observer,
                  a checkpoint after each task lets Resume continue a stopped run
    live.py       what training shows: progress, epoch counter and time left, status line, errors
    panels.py     the mask panel: DWA's mean |mask| per layer and embedding PCA, HAT's unit masks
    session.py    the session's runs, the replay cache and the comparison table (HAT's rho paired
                  with references by aggregate.py's rule)
    labels.py     what differs between runs, in the controls' forms (legend and table)
    drawing.py    figures as base64 PNGs for the front end, training curves, the runs' overlay
    availability.py  which benchmarks have their data here; the profile fallback
    configfile.py the configuration as TOML (the presets' format) and as a command line
    tools.py      the tool row: exports (CSV, PNG/SVG), config save/load, the command line
    explorer.py   the Explorer, which lays them out

Figures reach the front end as base64 PNG strings inside Output widgets. Nothing trains until Run is
clicked, so under papermill the explorer only renders. Finished runs join a session table
(`Explorer.table()`), replayed instantly when the same configuration is run again."""

from dwa_core.widgets.controls import Form, choices, control, field_docs, network_options
from dwa_core.widgets.drawing import Figures, plot_history, plot_overlay, png_base64, show_figure
from dwa_core.widgets.explorer import Explorer, explorer
from dwa_core.widgets.runner import Runner
from dwa_core.widgets.session import Run, Session

__all__ = ["Explorer", "Figures", "Form", "Run", "Runner", "Session", "choices", "control", "explorer",
           "field_docs", "network_options", "plot_history", "plot_overlay", "png_base64", "show_figure"]
