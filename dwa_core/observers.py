"""Observers of the one task loop (`loop.train_tasks`, `Approach.fit`): progress bars, live plots,
Stop, checkpoints and walkthrough records are callbacks on that loop, never a second loop.

An observer subclasses `Observer` and overrides the events it needs; every event is a no-op by
default (as avalanche's plugins). The loop calls, for each task t:

    before_task(t, task)        before the approach's `fit` of task t
    after_epoch(t, row)         after each epoch: `row` is the epoch's history record (dict: epoch,
                                lr, train_loss, train_acc, valid_loss, valid_acc, best, seconds)
    stop_requested() -> bool    after each training batch's optimiser step; True ends the run there
                                (the loop raises `Stopped`; tasks finished before are kept)
    after_task(t, results)      after task t is trained and scored (results: `results.Results`,
                                rows 0..t filled)

`Observers` fans one event out to several observers, in order."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Stopped(Exception):
    """Raised inside the training loop when an observer asked it to stop (after the current batch)."""


class Observer:
    """What the task loop tells; each event does nothing unless overridden (see the module doc)."""

    def before_task(self, t: int, task) -> None:
        """Before task t (a `data.types.Task`) is fitted."""

    def after_epoch(self, t: int, row: dict) -> None:
        """After each epoch of task t; `row` is the epoch's history record."""

    def stop_requested(self) -> bool:
        """Polled after every training batch; True stops the run after that batch."""
        return False

    def after_task(self, t: int, results) -> None:
        """After task t is trained and its row of `results` (a Results) is recorded."""


NO_OBSERVER = Observer()


class Observers(Observer):
    """Several observers as one: each event goes to every observer in order; stop if any asks."""

    def __init__(self, *observers: Observer):
        self.observers = [o for o in observers if o is not None]

    def before_task(self, t, task):
        for o in self.observers:
            o.before_task(t, task)

    def after_epoch(self, t, row):
        for o in self.observers:
            o.after_epoch(t, row)

    def stop_requested(self):
        return any(o.stop_requested() for o in self.observers)

    def after_task(self, t, results):
        for o in self.observers:
            o.after_task(t, results)


class Stop(Observer):
    """The Stop button: `request()` (from any thread) ends the run after the current batch."""

    def __init__(self):
        self._event = threading.Event()

    def request(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def stop_requested(self) -> bool:
        return self._event.is_set()


class Callbacks(Observer):
    """Plain functions as an observer: on_epoch(t, epoch, row) and on_task(t, results), either None
    (the keyword arguments of `run_experiment`)."""

    def __init__(self, on_epoch: Callable | None = None, on_task: Callable | None = None):
        self.on_epoch, self.on_task = on_epoch, on_task

    def after_epoch(self, t, row):
        if self.on_epoch is not None:
            self.on_epoch(t, row["epoch"], row)

    def after_task(self, t, results):
        if self.on_task is not None:
            self.on_task(t, results)
