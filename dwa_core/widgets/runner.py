"""The explorer's runner: builds a configuration as run_experiment does and trains it through the
one task loop (`loop.train_tasks`) in a background thread, so that Stop stays clickable. Stop is an
observer of that loop (`observers.Stop`): the run ends after the current batch and keeps the tasks
already finished. After each task the run's checkpoint is written as run_experiment writes it (the
run folder's checkpoint.pt), so a stopped run resumes from its next task, here (`prepare(cfg,
resume=True)`) or from the command line. Nothing of the approach is patched."""

from __future__ import annotations

import threading
from collections.abc import Callable

from dwa_core import data
from dwa_core.config import ExperimentConfig
from dwa_core.experiment import (CHECKPOINT, build_approach, resolve_device, restore_checkpoint, validate,
                                 write_checkpoint)
from dwa_core.loop import empty_results, train_tasks
from dwa_core.observers import Observer, Observers, Stop
from dwa_core.results import Results
from dwa_core.runs import run_dir


class Checkpoints(Observer):
    """Writes the run's checkpoint (approach state, RNG, results) into `folder` after each task."""

    def __init__(self, folder, approach):
        self.folder, self.approach = folder, approach

    def after_task(self, t, results):
        self.folder.mkdir(parents=True, exist_ok=True)
        write_checkpoint(self.folder, self.approach, results)


def resumable(cfg: ExperimentConfig) -> bool:
    """True when `cfg`'s run folder holds a checkpoint to resume from."""
    return (run_dir(cfg) / CHECKPOINT).exists()


class Runner:
    """One training at a time: `prepare` then `train` (synchronously), or `start` a function in a
    background thread; `stop` asks the running training to end after its current batch."""

    def __init__(self):
        self.stopper = Stop()
        self.thread: threading.Thread | None = None
        self.approach = None  # the approach of the latest training

    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, target: Callable[[], object]) -> bool:
        """Run `target` in a background thread; False (and nothing started) while one runs."""
        if self.busy():
            return False
        self.thread = threading.Thread(target=target, daemon=True, name="dwa-explorer")
        self.thread.start()
        return True

    def stop(self) -> None:
        """End the running training after its current batch (from any thread)."""
        self.stopper.request()

    def wait(self, timeout: float | None = None) -> None:
        """Block until a training started by `start` has ended (or `timeout` seconds)."""
        if self.thread is not None:
            self.thread.join(timeout)

    def prepare(self, cfg: ExperimentConfig, resume: bool = False) -> tuple[object, list, Results]:
        """(approach, tasks, Results) of `cfg`, validated, loaded and seeded as run_experiment
        does; with `resume`, restored from the run folder's checkpoint (Results then holds the
        finished tasks). A bad config is a ConfigError, missing data a FileNotFoundError."""
        plan, device = validate(cfg), resolve_device(cfg.device)
        bench = data.load_benchmark(cfg, device)
        self.approach = build_approach(cfg, plan, bench, device)
        results = empty_results(bench.tasks, cfg.to_dict(), str(device))
        if resume:
            results = restore_checkpoint(run_dir(cfg), self.approach, results)
        return self.approach, bench.tasks, results

    def train(self, approach, tasks, results: Results, observer: Observer, folder=None) -> bool:
        """Train the tasks after `results.completed_tasks` into `results` through the one task loop,
        `observer` and Stop listening, writing a checkpoint into `folder` (a run folder) after each
        task when given; True when Stop ended it. A Stop requested since the last
        `stopper.clear()` ends it at its first batch."""
        saving = Checkpoints(folder, approach) if folder is not None else None
        return train_tasks(approach, tasks, results, Observers(self.stopper, saving, observer),
                           start=results.completed_tasks)
