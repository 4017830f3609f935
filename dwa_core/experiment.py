"""run_experiment(cfg) -> Results: the one programmatic entry point, with per-task checkpoints."""

from __future__ import annotations

import contextlib
import io
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dwa_core import approaches, data, models, numerics, runs
from dwa_core.config import ConfigError, ExperimentConfig, build_params
from dwa_core.loop import empty_results, record_scores, train_tasks  # noqa: F401 (record_scores: API)
from dwa_core.observers import Callbacks, Observer, Observers
from dwa_core.results import Results, ResultsError, WriteError, atomic_write, remove_stale_temporaries

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: run folders are not locked
    fcntl = None

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"
RESULTS = runs.RESULTS
LOCK = ".lock"


class CheckpointError(ResultsError):
    """A checkpoint that cannot be read, or that belongs to a run with other settings."""


class RunDirInUseError(RuntimeError):
    """Another process is writing the same run folder."""


def resolve_device(name: str) -> torch.device:
    """"auto" picks cuda, then mps, then cpu; an unavailable device is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available (try 'auto' or 'cpu')")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device: {name!r} requested but only {torch.cuda.device_count()} CUDA "
                          f"device(s) exist (cuda:0 .. cuda:{torch.cuda.device_count() - 1})")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device: {name!r} requested but MPS is not available (try 'auto' or 'cpu')")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Plan:
    """Everything validated from a config before any data is loaded or trained."""

    approach_cls: type
    approach_params: object
    arch: str


def validate(cfg: ExperimentConfig) -> Plan:
    """Check every name and parameter of cfg (and the numerics DWA_CORE_NUMERICS selects); raises
    ConfigError before any work is done."""
    try:
        numerics.check_selection()
        approach_cls = approaches.get(cfg.approach)
        data.get_spec(cfg.benchmark)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    params = build_params(approach_cls.Params, cfg.approach_params, f"approach_params ({cfg.approach})")
    data.benchmark_params(cfg)
    arch = cfg.network
    if arch != "auto":
        name = models.network_name(arch, approach_cls.family)
        if arch not in models.ARCHITECTURES or name not in models.NETWORKS:
            raise ConfigError(f"network: {cfg.approach!r} needs a {approach_cls.family!r} network; "
                              f"{arch!r} has none (networks: {', '.join(models.NETWORKS.names())})")
    models.check_network_params(arch, approach_cls.family, cfg.network_params)
    resolve_device(cfg.device)
    data.check_data_dir(cfg.data_dir)
    return Plan(approach_cls, params, arch)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def build_approach(cfg: ExperimentConfig, plan: Plan, bench, device):
    """Seeded model + approach for a benchmark (also used by notebooks to step through)."""
    seed_everything(cfg.seed)
    arch = bench.network if plan.arch == "auto" else plan.arch
    model = models.build(arch, plan.approach_cls.family, bench.input_shape, bench.task_classes,
                         cfg.network_params, cfg.weight_init, seed=cfg.seed).to(device)
    approach = plan.approach_cls(model, cfg.train, plan.approach_params, seed=cfg.seed)
    return approach


def run_experiment(cfg: ExperimentConfig, *, resume: bool = True, save: bool = True,
                   on_epoch: Callable | None = None, on_task: Callable | None = None,
                   observer: Observer | None = None) -> Results:
    """Train cfg.approach on every task of cfg.benchmark in order; acc[t][u] for u <= t.

    The tasks are trained by the one task loop (`loop.train_tasks`); `observer` (observers.py) and
    the plain callbacks on_epoch(t, epoch, row) and on_task(t, results) hear its events, after the
    checkpoint of each task is written. An observer that stops the run leaves the finished tasks.
    With `save`, results and a checkpoint are written to output_dir/run_name after every task,
    and a rerun of the same config resumes after the last completed task (rewriting results.json
    from the checkpoint, so a damaged one is repaired). The run folder is created and locked
    before any data is loaded: an unwritable output_dir is a WriteError, a folder in use by
    another run a RunDirInUseError, a checkpoint of other settings a CheckpointError."""
    plan = validate(cfg)
    run_dir = runs.run_dir(cfg)
    observers = Observers(observer, Callbacks(on_epoch, on_task))
    with _locked(run_dir) if save else contextlib.nullcontext():
        return _run(cfg, plan, run_dir, resume=resume, save=save, observer=observers)


class _Checkpoints(Observer):
    """Writes results, checkpoint and (with cfg.task_snapshots) the task's weights after each task."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path, approach):
        self.cfg, self.run_dir, self.approach = cfg, run_dir, approach

    def after_task(self, t, results):
        write_checkpoint(self.run_dir, self.approach, results)
        if self.cfg.task_snapshots:
            save_snapshot(self.run_dir, t, self.approach.model)


def _run(cfg, plan, run_dir, *, resume, save, observer) -> Results:
    device = resolve_device(cfg.device)
    bench = data.load_benchmark(cfg, device)
    approach = build_approach(cfg, plan, bench, device)
    results = empty_results(bench.tasks, cfg.to_dict(), str(device))
    if save and resume and (run_dir / CHECKPOINT).exists():
        results = restore_checkpoint(run_dir, approach, results)
        results.save(run_dir / RESULTS)  # rebuilt from the checkpoint: repairs a damaged file
        log.info("resuming %s after task %d", run_dir, results.completed_tasks - 1)
    if save:
        observer = Observers(_Checkpoints(cfg, run_dir, approach), observer)
    train_tasks(approach, bench.tasks, results, observer, start=results.completed_tasks)
    if save:
        results.save_text(run_dir / "acc.txt")
    return results


def snapshot_path(run_dir, t: int) -> Path:
    """Where a run with `task_snapshots` keeps the model weights after task t."""
    return Path(run_dir) / f"task-{t}.pt"


def save_snapshot(run_dir: Path, t: int, model) -> Path:
    """The model's state_dict after task t, written atomically (see snapshot_path)."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return atomic_write(snapshot_path(run_dir, t), buffer.getvalue())


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    """Create run_dir and hold an exclusive lock on run_dir/.lock while the run writes there.
    Taking the lock removes the temporary files that killed writes left there (a SIGKILL during
    a checkpoint); a run that wrote nothing (it failed while loading its data or building its
    model) removes the folder again (and the output folders created for it), so no empty run folder
    holding only .lock is left behind."""
    lock_path = run_dir / LOCK
    created = [p for p in (run_dir, *run_dir.parents) if not p.exists()]  # innermost first
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a")  # noqa: SIM115 (closed below)
    except OSError as err:
        raise WriteError(err.errno, f"output_dir: cannot create {lock_path}: "
                         f"{err.strerror or err}", str(lock_path)) from err
    held = False
    try:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunDirInUseError(f"{run_dir} is in use by another run (it holds {lock_path}); "
                                       f"wait for it to finish or use another output_dir") from None
        held = True
        for tmp in remove_stale_temporaries(run_dir):
            log.info("removed %s, left by a killed write", tmp)
        yield
    finally:
        if held and [p.name for p in run_dir.iterdir()] == [LOCK]:  # nothing written: no folder
            with contextlib.suppress(OSError):  # stops at the first folder that is not empty
                lock_path.unlink()
                for folder in dict.fromkeys([run_dir, *created]):
                    folder.rmdir()
        handle.close()  # releases the lock


def write_checkpoint(run_dir: Path, approach, results: Results) -> None:
    """Write the run folder's checkpoint.pt (the approach's state, the RNG states, `results`)
    atomically, then results.json. Raises WriteError (an OSError) when a file cannot be written."""
    state = {"approach": approach.state_dict(), "rng": _rng_state(), "results": results.to_dict()}
    buffer = io.BytesIO()  # serialise in memory: a full disk then fails in a plain write, with its reason
    torch.save(state, buffer)
    atomic_write(run_dir / CHECKPOINT, buffer.getvalue())
    results.save(run_dir / RESULTS)


def config_differences(saved: dict, current: dict) -> list[str]:
    """The fields that change the numbers and differ between two config dicts, as
    "field: saved -> current", nested ones dotted ("train.lr: 0.3 -> 0.05"); paths, device and
    download are ignored, as in `ExperimentConfig.key()`."""
    ignored = set(ExperimentConfig.LOCATION_FIELDS)
    flat_saved, flat_current = _flatten(saved), _flatten(current)
    names = sorted((set(flat_saved) | set(flat_current)) - ignored)
    missing = "(absent)"
    return [f"{k}: {flat_saved.get(k, missing)!r} -> {flat_current.get(k, missing)!r}"
            for k in names if flat_saved.get(k, missing) != flat_current.get(k, missing)]


def _flatten(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and value and key == "train":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def load_checkpoint(path: Path) -> dict:
    """The checkpoint's state dict; CheckpointError naming the file when it is empty or damaged."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # EOFError (empty), RuntimeError (truncated zip), UnpicklingError, ...
        reason = (str(err).splitlines() or [""])[0].split(". ")[0]
        raise CheckpointError(f"checkpoint {path} is unreadable (empty, truncated or damaged: "
                              f"{type(err).__name__}: {reason}); rerun with --restart (Python: "
                              f"resume=False) to train this run from task 0") from err
    if not isinstance(state, dict) or not {"approach", "rng", "results"} <= set(state):
        raise CheckpointError(f"checkpoint {path} is not a dwa_core checkpoint (missing approach, rng "
                              f"or results)")
    return state


def load_run(run_dir) -> Results:
    """The results of a run folder: results.json, or, when it is missing or damaged, the results
    stored in its checkpoint (results.json is then rewritten from them). A ResultsError names both
    files when neither can be read (callers such as sweep aggregation report that run alone)."""
    run_dir = Path(run_dir)
    try:
        return Results.load(run_dir / RESULTS)
    except (ResultsError, OSError) as results_err:
        if not (run_dir / CHECKPOINT).is_file():
            raise ResultsError(f"{results_err} (and no {CHECKPOINT} to rebuild it from)") from results_err
        try:
            results = Results.from_dict(load_checkpoint(run_dir / CHECKPOINT)["results"])
        except ResultsError as err:
            raise ResultsError(f"{results_err}; {err}") from err
        log.warning("%s unreadable (%s); rebuilt from %s", run_dir / RESULTS, results_err, CHECKPOINT)
        with contextlib.suppress(OSError):
            results.save(run_dir / RESULTS)
        return results


def restore_checkpoint(run_dir: Path, approach, fresh: Results) -> Results:
    """Load the run folder's checkpoint into `approach` (weights, state, RNG states) and return its
    Results with `fresh`'s config (this run's paths and device). Raises CheckpointError when it is
    unreadable, of other numerics, or of a run with other settings than `fresh.config`."""
    path = run_dir / CHECKPOINT
    state = load_checkpoint(path)
    try:
        results = Results.from_dict(state["results"])
    except ResultsError as err:
        raise CheckpointError(f"checkpoint {path}: {err}") from err
    differences = config_differences(results.config, fresh.config)
    changed = numerics.mismatch(results.numerics)
    if changed:
        raise CheckpointError(f"{path} is a checkpoint of other numerics ({changed}); rerun with "
                              f"--restart (Python: resume=False) to train this run from task 0")
    if differences:
        raise CheckpointError(f"{path} is a checkpoint of a run with other settings "
                              f"({'; '.join(differences)}); give this run another output_dir or name")
    results.config = fresh.config  # same numbers; keep this run's paths and device request
    if not results.valid_acc:  # a checkpoint written before validation accuracy was recorded
        results.valid_acc = [[float("nan")] * results.n_tasks for _ in range(results.n_tasks)]
    approach.load_state_dict(_to_device(state["approach"], fresh.device))
    _set_rng_state(state["rng"])
    return results


def _to_device(obj, device):
    if torch.is_tensor(obj):
        return obj.to(device) if obj.is_floating_point() or obj.dtype == torch.long else obj
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_device(v, device) for v in obj]
    return obj
