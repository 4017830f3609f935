"""The explorer: an ipywidgets front end for varying hyper-parameters and comparing runs.

    from dwa_core import widgets
    ex = widgets.Explorer()
    ex.widget          # display it; Run trains in the background, Stop ends after the current batch

One module per concern, each importable alone:

    controls.py   the controls generated from the dataclasses (Form, field_docs, choices)
    runner.py     training through the one task loop in a background thread; Stop is an observer
    session.py    the session's runs, the replay cache and the comparison table (HAT's rho paired
                  with references by aggregate.py's rule)
    drawing.py    figures as base64 PNGs for the front end, training curves, the runs' overlay
    explorer.py   the Explorer, which lays them out

Figures reach the front end as base64 PNG strings inside Output widgets. Nothing trains until Run is
clicked, so under papermill the explorer only renders. Finished runs join a session table
(`Explorer.table()`), replayed instantly when the same configuration is run again."""

from dwa_core.widgets.controls import Form, choices, control, field_docs, network_options
from dwa_core.widgets.drawing import plot_history, plot_overlay, png_base64, show_figure
from dwa_core.widgets.explorer import Explorer, explorer
from dwa_core.widgets.runner import Runner
from dwa_core.widgets.session import Run, Session

__all__ = ["Explorer", "Form", "Run", "Runner", "Session", "choices", "control", "explorer", "field_docs",
           "network_options", "plot_history", "plot_overlay", "png_base64", "show_figure"]
