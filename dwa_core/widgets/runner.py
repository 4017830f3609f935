"""The explorer's runner: builds a configuration as run_experiment does and trains it through the
one task loop (`loop.train_tasks`) in a background thread, so that Stop stays clickable. Stop is an
observer of that loop (`observers.Stop`): the run ends after the current batch and keeps the tasks
already finished. Nothing of the approach is patched."""

from __future__ import annotations

import threading
from collections.abc import Callable

from dwa_core import data
from dwa_core.config import ExperimentConfig
from dwa_core.experiment import build_approach, resolve_device, validate
from dwa_core.loop import empty_results, train_tasks
from dwa_core.observers import Observer, Observers, Stop
from dwa_core.results import Results


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

    def prepare(self, cfg: ExperimentConfig) -> tuple[object, list, Results]:
        """(approach, tasks, empty Results) of `cfg`, validated, loaded and seeded as
        run_experiment does; a bad config is a ConfigError, missing data a FileNotFoundError."""
        plan, device = validate(cfg), resolve_device(cfg.device)
        bench = data.load_benchmark(cfg, device)
        self.approach = build_approach(cfg, plan, bench, device)
        return self.approach, bench.tasks, empty_results(bench.tasks, cfg.to_dict(), str(device))

    def train(self, approach, tasks, results: Results, observer: Observer) -> bool:
        """Train every task into `results` through the one task loop, `observer` and Stop
        listening; True when Stop ended it. A Stop requested since the last `stopper.clear()` ends
        it at its first batch."""
        return train_tasks(approach, tasks, results, Observers(self.stopper, observer))
