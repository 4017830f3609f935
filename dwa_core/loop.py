"""The task loop, written once: train each task in order, score every task seen so far, tell the
observers (`observers.py`). `run_experiment`, the explorer's runner, the walkthrough helpers and the
figures all train through `train_tasks`; what they add (checkpoints, progress bars, live plots,
Stop, per-task records) is an observer, never another copy of the loop.

    for t in tasks[start:]:  before_task -> approach.fit (after_epoch, stop_requested inside)
                             -> record_scores (row t of acc, loss, valid_acc, agnostic_acc, ...)
                             -> after_task(t, results)

The epoch and batch loops are `Approach.fit` (approaches/base.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from dwa_core.data.types import Task
from dwa_core.observers import NO_OBSERVER, Observer, Stopped
from dwa_core.results import Results


def record_scores(approach, tasks: Sequence[Task], t: int, results: Results) -> None:
    """After task t: test loss and accuracy (row t of `loss`, `acc`), validation accuracy (row t
    of `valid_acc`) and the task-agnostic test accuracy and task inference (rows t of
    `agnostic_acc`, `task_inference_acc`) on every task u <= t."""
    for u in range(t + 1):
        results.loss[t][u], results.acc[t][u] = approach.test(u, tasks[u])
    for u in range(t + 1):
        results.valid_acc[t][u] = approach.test(u, tasks[u], "valid")[1]
    if not results.agnostic_acc:  # resumed from a checkpoint written before they were recorded
        nan = float("nan")
        results.agnostic_acc = [[nan] * results.n_tasks for _ in range(results.n_tasks)]
        results.task_inference_acc = [[nan] * results.n_tasks for _ in range(results.n_tasks)]
    for u in range(t + 1):
        agnostic = approach.task_agnostic(u, tasks[u], t + 1)
        results.agnostic_acc[t][u], results.task_inference_acc[t][u] = agnostic


def empty_results(tasks: Sequence[Task], config: dict | None = None, device: str = "") -> Results:
    """A Results with nothing trained yet for `tasks` (what `train_tasks` fills)."""
    return Results.empty(config or {}, [t.name for t in tasks], [t.n_classes for t in tasks], device)


def train_tasks(approach, tasks: Sequence[Task], results: Results, observer: Observer = NO_OBSERVER,
                start: int = 0) -> bool:
    """Train tasks[start:] in order with `approach` (each sees the tasks before it as `earlier`),
    recording after each task t its scores (`record_scores`), its per-epoch history, its wall time
    (seconds) and `results.completed_tasks = t + 1`. Returns True when an observer stopped the run
    (the task being trained is then dropped; the finished ones stay in `results`), else False.
    Errors of the approach (DivergedError, ...) propagate with the finished tasks recorded."""
    for t in range(start, len(tasks)):
        observer.before_task(t, tasks[t])
        begin = time.perf_counter()
        try:
            history = approach.fit(t, tasks[t], tasks[:t], observer)
        except Stopped:
            return True
        record_scores(approach, tasks, t, results)
        results.history.append(history)
        results.task_seconds.append(time.perf_counter() - begin)
        results.completed_tasks = t + 1
        observer.after_task(t, results)
    return False
