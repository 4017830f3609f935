"""What the explorer shows while it trains: `LiveView`, its observer of the task loop (progress
bar, epoch counter and time estimate, status line, live curves, the mask panel after each task),
and the status line's HTML (`line`, `summary`)."""

from __future__ import annotations

import html
import time

from dwa_core import metrics
from dwa_core.data.sources import DatasetNotFoundError
from dwa_core.errors import message, one_line
from dwa_core.observers import Observer
from dwa_core.results import Results
from dwa_core.widgets.availability import where_to_put

RED = "#b00020"


class LiveView(Observer):
    """The explorer's observer of the task loop. `done`: epochs already counted on the bar (a
    resumed run starts after its finished tasks)."""

    def __init__(self, ex, epochs: int, n_tasks: int, done: int = 0):
        self.ex, self.epochs, self.n_tasks = ex, epochs, n_tasks
        self.start, self.done_before = time.perf_counter(), done
        self.epoch_in_task = 0

    def before_task(self, t, task):
        self.epoch_in_task = 0
        self.ex.status.value = line(f"training task {t + 1}/{self.n_tasks} ({task.name}) ...")

    def after_epoch(self, t, row):
        ex = self.ex
        ex.history.append(dict(row, task=t))
        self.epoch_in_task += 1
        ex.progress.value = min(ex.progress.max, t * self.epochs + self.epoch_in_task)
        ex.eta.value = self.counter(t)
        ex.status.value = line(f"task {t + 1} epoch {row['epoch'] + 1}: train loss "
                               f"{row['train_loss']:.3f}, valid acc {row['valid_acc']:.3f}")
        # live, but drawing never takes more than about a quarter of the time (matplotlib is slow)
        if time.perf_counter() - ex.last_draw > max(0.5, 3 * ex.draw_seconds):
            ex.draw(final=False)

    def counter(self, t: int) -> str:
        """'task 2/5 · epoch 3/5 · about 12 s left' (left: the epochs still to run at the mean
        time per epoch so far; an early stop makes it shorter)."""
        bar = self.ex.progress
        trained = bar.value - self.done_before
        left = (time.perf_counter() - self.start) / max(trained, 1) * (bar.max - bar.value)
        return (f"task {t + 1}/{self.n_tasks} · epoch {self.epoch_in_task}/{self.epochs} · "
                f"about {left:.0f} s left")

    def after_task(self, t, results):
        self.ex.progress.value = (t + 1) * self.epochs
        self.ex.draw(final=True)
        self.ex.draw_panel(t)


def summary(res: Results) -> str:
    """One line: final average accuracy and backward transfer of a run."""
    acc = res.acc_matrix()
    return (f"final average accuracy {metrics.average_accuracy(acc):.3f}, "
            f"BWT {metrics.backward_transfer(acc):+.3f}")


def line(text: str, colour: str = "inherit") -> str:
    """`text` as the status line's HTML, escaped, in `colour`, wrapped when long."""
    return f'<span style="color:{colour}; white-space: normal">{html.escape(text)}</span>'


def error_html(err: BaseException, data_dir=None) -> str:
    """The status line of an error: one red line; for missing data also the folders searched and
    where to put the files (the message's own lines, wrapped)."""
    if not isinstance(err, DatasetNotFoundError):
        return line(f"error: {one_line(err)}", RED)
    detail = f"{message(err, 'python')}\n{where_to_put(data_dir)}"
    return (line("error: data missing for this benchmark (details below)", RED)
            + f'<pre class="dwa-error-detail" style="white-space: pre-wrap; color:{RED}">'
            + html.escape(detail) + "</pre>")
