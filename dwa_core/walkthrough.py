"""Step-through helpers of the HAT and DWA tutorials (notebooks 03 and 05).

They drive the library's own approach objects (fit, forward, loss, after_backward) and return plain
numbers and numpy arrays, so the notebooks only show and explain. HAT: docs/original-code.md#hat (Serra et al.
2018, Eqs. 1-5); DWA: docs/original-code.md#dwa (paper Eqs. 3-7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dwa_core.approaches.base import Batch
from dwa_core.curriculum import SCHEDULES, Curriculum
from dwa_core.data.types import Split
from dwa_core.functional.hat import anneal_s, compensate_embedding_grad, gate, mask_regularizer
from dwa_core.loop import empty_results, train_tasks
from dwa_core.observers import NO_OBSERVER, Observer

BLOCKED = 0.01  # a gradient entry is "blocked" when conditioning keeps at most 1 % of it


def prepare(cfg):
    """(approach, benchmark) of an ExperimentConfig, built and seeded as run_experiment does."""
    from dwa_core import data
    from dwa_core.experiment import build_approach, resolve_device, validate

    plan, device = validate(cfg), resolve_device(cfg.device)
    bench = data.load_benchmark(cfg, device)
    return build_approach(cfg, plan, bench, device), bench


def accuracy_row(approach, bench, t: int) -> list[float]:
    """Test accuracy on tasks 0..t (a row of the accuracy matrix)."""
    return [approach.test(u, bench.tasks[u])[1] for u in range(t + 1)]


def fit_tasks(approach, bench, n_tasks: int, observer: Observer = NO_OBSERVER) -> list[list[float]]:
    """Fit the first n_tasks tasks in order through the task loop of run_experiment
    (`loop.train_tasks`, which `observer` hears); the test accuracy rows after each task."""
    tasks = bench.tasks[:n_tasks]
    results = empty_results(tasks)
    train_tasks(approach, tasks, results, observer)
    return [results.acc[t][:t + 1] for t in range(results.completed_tasks)]


# ---- HAT --------------------------------------------------------------------------------------
def gate_table(e, s_values) -> np.ndarray:
    """(len(s_values), len(e)): a = sigmoid(s e) for every s (HAT Eq. 1)."""
    e = torch.as_tensor(e, dtype=torch.float64)
    return torch.stack([gate(e, float(s)) for s in s_values]).numpy()


def anneal_trace(s_max: float, n_batches: int) -> np.ndarray:
    """s used by the n_batches batches of one epoch: progress b/n_batches in anneal_s (HAT Eq. 3)."""
    return np.array([anneal_s(b / n_batches, s_max) for b in range(n_batches)])


def compensation_factor(e, s: float, s_max: float, thres_cosh: float = 50.0) -> np.ndarray:
    """The factor HAT multiplies an embedding gradient by (Eq. 4 with the cosh clamp)."""
    e = torch.as_tensor(e, dtype=torch.float64)
    return compensate_embedding_grad(torch.ones_like(e), e, s, s_max, thres_cosh).numpy()


def unit_usage(masks: dict, threshold: float = 0.5) -> dict:
    """Layer -> fraction of its units with a mask above `threshold`."""
    return {k: float((torch.as_tensor(m) > threshold).float().mean()) for k, m in masks.items()}


def gradient_conditioning(approach, x: torch.Tensor, y: torch.Tensor, t: int, progress: float = 0.5) -> dict:
    """One training batch of task t through HAT's step up to the conditioning (no optimiser step):
    forward at the annealed s of `progress`, loss, backward, then after_backward (Eq. 2). For each
    gated layer's weight: the fraction of its non-zero gradient entries that conditioning blocks
    (keeps <= 1 %) and the fraction of the gradient norm it keeps; 'blocked' over all of them, and
    'blocked_all', the fraction of all weight entries whose multiplier is <= 1 %."""
    model = approach.model
    was_training = model.training
    model.train()
    batch = Batch(Split(x, y), torch.arange(len(y)), epoch=0, progress=progress)
    model.zero_grad(set_to_none=True)
    with torch.random.fork_rng(devices=[]):  # dropout draws here leave the training run unchanged
        outputs = approach.forward(x, t, batch)
        approach.loss(outputs, y, t, batch).backward()
    names = [f"layers.{k}.weight" for k in model.layers]
    params = dict(model.named_parameters())
    raw = {n: params[n].grad.detach().clone() for n in names}
    approach.after_backward(t, outputs)
    out, blocked, total = {}, 0, 0
    for n in names:
        g, h = raw[n], params[n].grad
        live = g != 0
        stopped = live & (h.abs() <= BLOCKED * g.abs())
        out[n] = {"blocked": float(stopped.sum() / live.sum().clamp_min(1)),
                  "kept_norm": float(h.norm() / g.norm().clamp_min(1e-30))}
        blocked, total = blocked + int(stopped.sum()), total + int(live.sum())
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    multipliers = [approach.multipliers[n].expand_as(params[n]) for n in names if n in approach.multipliers]
    stopped_all = sum(int((m <= BLOCKED).sum()) for m in multipliers)
    return {"layers": out, "blocked": blocked / max(total, 1), "s": outputs.s,
            "blocked_all": stopped_all / sum(params[n].numel() for n in names)}


def predicted_blocked(cumulative: dict, layers: dict, threshold: float = 1 - BLOCKED) -> float:
    """Fraction of the gated weight entries with min(a_post, a_pre) > threshold (first layer: a_post
    only): those whose gradient Eq. 2 scales by < 1 - threshold, from the cumulative unit masks
    (layer -> (units,)) and the layers' input widths (layer -> int), for an MLP."""
    blocked, total, pre = 0, 0, None
    for name in layers:
        post = (torch.as_tensor(cumulative[name]) > threshold).float()
        used = post[:, None] * (torch.ones(layers[name]) if pre is None else pre[None, :])
        blocked, total, pre = blocked + float(used.sum()), total + used.numel(), post
    return blocked / total


class HATRecords(Observer):
    """What `fit_hat` records around each task (see there); `records`: one dict per task."""

    def __init__(self, approach, batch: int = 64):
        self.approach, self.batch, self.records = approach, batch, []
        self.previous = None  # a^{<t} before the task being trained

    def before_task(self, t, task):
        approach, rec = self.approach, {"task": task.name}
        if t:
            x, y = task.train.x[:self.batch], task.train.y[:self.batch]
            rec["conditioning"] = gradient_conditioning(approach, x, y, t)
            widths = {k: layer.weight.shape[1] for k, layer in approach.model.layers.items()}
            rec["predicted_blocked"] = predicted_blocked(approach.cumulative, widths)
        self.previous = approach.cumulative  # after_task builds a new dict
        self.records.append(rec)

    def after_task(self, t, results):
        approach, rec, previous = self.approach, self.records[t], self.previous
        with torch.no_grad():
            masks = approach.model.masks(t, approach.params.s_max)
            rec["regularizer"] = float(mask_regularizer(
                masks.values(), None if previous is None else [previous[k] for k in masks]))
        rec["masks"] = {k: m.cpu().numpy() for k, m in masks.items()}
        rec["cumulative"] = {k: m.cpu().numpy() for k, m in approach.cumulative.items()}
        rec["used"] = unit_usage(rec["masks"])
        rec["cumulative_used"] = unit_usage(rec["cumulative"])
        rec["acc"] = results.acc[t][:t + 1]


def fit_hat(approach, bench, batch: int = 64) -> list[dict]:
    """Fit HAT (MLP) on every task in order, through the task loop (`loop.train_tasks`). Before
    task t >= 1: the conditioning of its first training batch and its prediction from the
    cumulative mask; after task t: its masks at s_max, the cumulative mask, the units used, R of its
    masks against a^{<t} (Eq. 5) and 'acc', the row of the accuracy matrix. One dict per task
    (numpy arrays)."""
    records = HATRecords(approach, batch)
    train_tasks(approach, bench.tasks, empty_results(bench.tasks), records)
    return records.records


# ---- DWA --------------------------------------------------------------------------------------
@torch.no_grad()
def dwa_inspect(approach, x: torch.Tensor, t: int) -> dict:
    """Evaluation forward of x on task t: {'embedding' (B, d), 'masks' {weight: (B, out, in...)},
    'output' (B, classes)} as numpy (materialised masks; small networks only)."""
    model = approach.model
    was_training = model.training
    model.eval()
    out = model(x, t)
    state = model.state
    model.train(was_training)
    return {"embedding": state.embedding.cpu().numpy(), "output": out.cpu().numpy(),
            "masks": {k: m.materialise().cpu().numpy() for k, m in state.masks.items()}}


def schedule_table(epochs: int, start: float = 0.2, horizon: int | None = None) -> dict:
    """{kind: [θ_e for e in 0..horizon]} of the curriculum schedules linear, exp and log."""
    horizon = epochs if horizon is None else horizon
    return {k: [Curriculum(k, epochs, start).theta(e) for e in range(horizon + 1)] for k in SCHEDULES}


def start_task(approach, task, t: int, epoch: int = 0):
    """What DWA does before an epoch of task t: the anchor search (t >= 1) and the curriculum's rows.
    Returns (rows, anchors) with anchors {'positive', 'negative', 'previous'} or None."""
    approach.before_task(t, task)
    approach.before_epoch(t, epoch, task.train)
    rows = approach.epoch_indices(t, epoch, task.train)
    return rows, approach.current


@torch.no_grad()
def anchor_summary(approach, x: torch.Tensor, y: torch.Tensor, t: int, anchors: dict) -> dict:
    """Norms of P and N, cos(P, N) (N is drawn orthogonal to P), and the CE of head t when every
    embedding is replaced by each anchor (N is the candidate that hurts most)."""
    from dwa_core.anchors import override_loss

    model, p, n = approach.model, anchors["positive"], anchors["negative"]
    was_training = model.training
    model.eval()
    out = {"norm_positive": float(p.norm()), "norm_negative": float(n.norm()),
           "cos_positive_negative": float(F.cosine_similarity(p, n, dim=0))}
    for key in ("positive", "negative", "previous"):
        if anchors.get(key) is not None:
            out[f"ce_{key}"] = float(override_loss(model, x, y, t, anchors[key]))
    model.train(was_training)
    return out


def dwa_loss_terms(approach, split, rows: torch.Tensor, t: int, epoch: int = 0) -> dict:
    """Each term of DWA's loss (Eq. 7) on the batch split[rows] of task t, from DWA.loss_terms:
    CE, L_emb (triplet, weighted by 1 - ζ), L_plasticity (Fisher-weighted masks), R (sparsity),
    σ, the weighted total and 'approach_loss' (DWA.loss itself on the same outputs; equal)."""
    p, model = approach.params, approach.model
    model.train()
    batch = Batch(split, rows, epoch, progress=0.0)
    x, y = split.x[rows], split.y[rows]
    out = approach.forward(x, t, batch)
    terms = approach.loss_terms(out, y, t, batch)
    total = terms["ce"]
    for name, lamb in (("embedding", p.lamb_triplet), ("plasticity", p.lamb_plasticity),
                       ("sparsity", p.lamb_sparsity)):
        if terms[name] is not None:
            total = total + terms["sigma"] * lamb * terms[name]
    with torch.no_grad():
        reference = approach.loss(out, y, t, batch)
    result = {k: v if v is None or isinstance(v, float) else float(v.detach()) for k, v in terms.items()}
    result.update(total=float(total.detach()), approach_loss=float(reference))
    return result


# ---- every notebook ---------------------------------------------------------------------------
class ParameterError(ValueError):
    """A bad notebook parameter; Jupyter shows it as one line (no traceback)."""

    def _render_traceback_(self):  # IPython's hook: what the notebook shows instead of a traceback
        return [f"ParameterError: {self}"]


def check_parameters(profile, seeds, device="cpu", data_dir=None, results_dir=None, **_ignored):
    """Validate the parameters cell of a notebook (also after `papermill -p NAME VALUE`); returns
    (profile, seeds as a list of ints). A bad value raises ParameterError, one line that says
    what is allowed. Also checks that dwa_core is imported from this notebook's own checkout."""
    from dwa_core.profiles import PROFILES

    if profile not in PROFILES:
        allowed = ", ".join(map(repr, sorted(PROFILES)))
        raise ParameterError(f"profile: must be one of {allowed}; got {profile!r}")
    if not isinstance(seeds, (list, tuple)) or not seeds \
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ParameterError(f"seeds: must be a non-empty list of integers >= 0, e.g. [0] or [0, 1, 2] "
                             f"(papermill: -y 'seeds: [0, 1]'); got {seeds!r}")
    if not isinstance(device, str) or device.split(":")[0] not in ("auto", "cpu", "cuda", "mps"):
        raise ParameterError(f"device: must be 'auto', 'cpu', 'cuda[:N]' or 'mps'; got {device!r}")
    for name, value in (("data_dir", data_dir), ("results_dir", results_dir)):
        if value is not None and not isinstance(value, (str, Path)):
            raise ParameterError(f"{name}: must be None or a path; got {value!r}")
    if results_dir is not None:  # where the runs are saved: checked before any of them trains
        from dwa_core.files import check_output_dir

        try:
            check_output_dir(results_dir, "results_dir")
        except ValueError as err:
            raise ParameterError(str(err)) from None
    unknown = unknown_injected_parameters()
    if unknown:
        raise ParameterError(f"unknown parameter(s) {', '.join(unknown)} (papermill -p); this notebook's: "
                             f"{', '.join(_assigned(_parameters_cells()[0]))}")
    check_checkout()
    return profile, list(seeds)


PAPERMILL_HEADER = "# Parameters\n"  # the first line of the cell papermill injects after the tagged one


def _parameters_cells() -> tuple[str, str] | tuple[()]:
    """(the notebook's parameters cell, the cell papermill injected after it) from the sources the
    IPython kernel has run; () outside IPython or without an injected cell."""
    try:
        history = get_ipython().user_ns.get("In", [])  # noqa: F821 (defined inside IPython)
    except NameError:
        return ()
    injected = [i for i, text in enumerate(history) if i > 0 and text.startswith(PAPERMILL_HEADER)]
    return (history[injected[-1] - 1], history[injected[-1]]) if injected else ()


def _assigned(source: str) -> list[str]:
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    targets = [t for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
               for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]
    return [t.id for t in targets if isinstance(t, ast.Name)]


def unknown_injected_parameters() -> list[str]:
    """The names papermill injected (`-p NAME VALUE`) that the notebook's parameters cell does not
    define: papermill only warns about them, and a misspelt one would silently do nothing."""
    cells = _parameters_cells()
    if not cells:
        return []
    known = set(_assigned(cells[0]))
    return [name for name in _assigned(cells[1]) if name not in known]


def check_checkout(cwd=None) -> None:
    """Fail loudly when a notebook of one checkout imports the dwa_core of another one."""
    import dwa_core

    here = Path(cwd or Path.cwd()).resolve()
    mine = here.parent / "dwa_core"
    used = Path(dwa_core.__file__).resolve().parent
    if here.name == "notebooks" and mine.is_dir() and mine.resolve() != used:
        raise ParameterError(f"this notebook belongs to {here.parent} but dwa_core is imported from "
                             f"{used.parent}: run `bash scripts/setup.sh` in {here.parent} and use its .venv")


def summary(record: dict, digits: int = 3, limit: int = 30):
    """A short, rounded view of a notebook's metrics record (scalars only, nested keys joined by
    '.'); lists and matrices are left to the metrics file. A one-column DataFrame."""
    import pandas as pd

    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, bool) or value is None or isinstance(value, str):
            flat[prefix] = value
        elif isinstance(value, (int, np.integer)):
            flat[prefix] = int(value)
        elif isinstance(value, (float, np.floating)):  # 3 decimals; 4 significant digits when large
            value = float(value)
            flat[prefix] = float(f"{value:.4g}") if abs(value) >= 1e4 else round(value, digits)

    walk("", record)
    items = list(flat.items())
    shown = dict(items[:limit])
    if len(items) > limit:
        shown["..."] = f"{len(items) - limit} more in the metrics file"
    return pd.Series(shown, dtype=object, name="value").to_frame()
