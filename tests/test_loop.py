"""The one task loop (dwa_core.loop) and its observers: every entry point trains through it, and Stop
is an observer that ends a run after the current batch, with nothing patched on the approach."""

import pytest

from dwa_core import walkthrough, widgets
from dwa_core.experiment import run_experiment
from dwa_core.observers import Callbacks, Observer, Observers, Stop


class Recorder(Observer):
    """Every event of the loop, in order, with the numbers an epoch reports."""

    def __init__(self):
        self.events = []

    def before_task(self, t, task):
        self.events.append(("before_task", t, task.name))

    def after_epoch(self, t, row):
        self.events.append(("epoch", t, row["epoch"], row["train_loss"], row["valid_acc"]))

    def after_task(self, t, results):
        self.events.append(("after_task", t, results.completed_tasks, tuple(results.acc[t][:t + 1])))


class StopAt(Observer):
    """Calls `stop()` at the first epoch of task `t` (then the loop polls the Stop observer)."""

    def __init__(self, t, stop):
        self.t, self.stop = t, stop

    def after_epoch(self, t, row):
        if t == self.t:
            self.stop()


def tiny_explorer(epochs: int = 1) -> widgets.Explorer:
    ex = widgets.Explorer(approach="sgd")
    ex.forms["benchmark"].controls["per_class"].value = "10"
    ex.forms["train"].controls["epochs"].value = epochs
    return ex


def test_observer_defaults_do_nothing_and_observers_fan_out():
    quiet, seen = Observer(), []
    assert quiet.before_task(0, None) is None and quiet.stop_requested() is False
    stop = Stop()
    both = Observers(quiet, stop, Callbacks(on_epoch=lambda t, e, row: seen.append((t, e))))
    both.after_epoch(1, {"epoch": 3})
    assert seen == [(1, 3)] and not both.stop_requested()
    stop.request()
    assert both.stop_requested()


def test_every_entry_point_sends_the_same_events_through_the_one_loop():
    """run_experiment, the explorer's runner and the walkthrough's fit_tasks on one config: the
    same events (tasks, epochs with their losses, scores after each task) reach an observer."""
    ex = tiny_explorer()
    cfg = ex.config()
    from_run = Recorder()
    run_experiment(cfg, save=False, observer=from_run)
    from_explorer = Recorder()
    ex.observers.append(from_explorer)
    assert ex.run() is not None, ex.status.value
    from_walkthrough = Recorder()
    approach, bench = walkthrough.prepare(cfg)
    walkthrough.fit_tasks(approach, bench, len(bench.tasks), observer=from_walkthrough)
    n_tasks = len(bench.tasks)
    assert [e[0] for e in from_run.events] == ["before_task", "epoch", "after_task"] * n_tasks
    assert from_explorer.events == from_run.events
    assert from_walkthrough.events == from_run.events


def test_stop_is_an_observer_of_the_loop_and_keeps_finished_tasks():
    stop = Stop()
    ex = tiny_explorer(epochs=3)
    ex.forms["train"].controls["lr_schedule"].value = "original-code"  # never stops early by itself
    results = run_experiment(ex.config(), save=False, observer=Observers(StopAt(1, stop.request), stop))
    assert results.completed_tasks == 1 and len(results.history) == 1


def test_explorer_stop_works_through_an_observer_without_patching_the_approach():
    ex = tiny_explorer(epochs=3)
    ex.forms["train"].controls["lr_schedule"].value = "original-code"  # never stops early by itself
    ex.observers.append(StopAt(1, ex.stop))  # clicks Stop during task 2, as a person would
    res = ex.run()
    assert "stopped: 1 of 5 tasks" in ex.status.value
    assert res.completed_tasks == 1 and ex.runs == []  # a stopped run does not join the table
    approach = ex.runner.approach
    patched = [k for k in vars(approach) if callable(getattr(type(approach), k, None))]
    assert patched == []  # no hook of the approach replaced on the instance
    ex.observers.clear()
    assert ex.run().completed_tasks == 5  # a Stop clicked before is forgotten by the next Run


@pytest.mark.parametrize("hook", ["after_step", "on_epoch"])
def test_the_loop_sets_nothing_on_the_approach(hook):
    approach, bench = walkthrough.prepare(tiny_explorer().config())
    walkthrough.fit_tasks(approach, bench, 1)
    assert hook not in vars(approach)
