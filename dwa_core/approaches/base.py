"""The one training loop (paper §4.3: the HAT paper's protocol) and the hooks an approach overrides.

An approach subclasses `Approach`, sets `Params` (its hyper-parameter dataclass), `family` (the
network family it needs) and `clip_grad` (its default gradient-norm clip), and overrides some of
these hooks. Each receives what it needs as arguments; the loop sets no attribute behind its back.

    before_task(t, task)               once, before the first epoch of task t (warm-up, new column,
                                       reset)
    training_data(t, task, earlier)    once: ((train, head), (valid, head)) to fit; `earlier` are the
                                       tasks before t (joint trains on their union)
    before_epoch(t, epoch, train)      each epoch, before its batches (DWA's anchor search)
    epoch_indices(t, epoch, train)     each epoch: the training rows to use (curriculum); None = all
    curriculum_done(epoch)             each epoch: may the lr schedule act yet
    forward(x, t, batch) -> Outputs    every batch, training and evaluation (masked forward): the
                                       logits and what `loss` needs from this pass (Outputs)
    loss(outputs, y, t, batch)         every batch, training and evaluation (CE + penalty)
    after_backward(t, outputs)         every training batch, before the clip and the step (gradient
                                       masking / compensation)
    after_step(t)                      every training batch, after the step (clamps)
    after_task(t, task)                once, after the best weights are restored (Fisher, masks,
                                       anchors)
    extra_state() / load_extra_state(state)   what a checkpoint must hold beyond the weights
    make_optimizer(lr), trainable_parameters() the optimiser and what it updates

`batch` is a `Batch` (which rows of which split, the epoch, the position in the epoch); it is None
when a hook is called outside the loop (a Fisher pass, a notebook probing one step). `fit`, `test`
and `train_epochs` are the loop itself: HAT wraps `fit`/`test` in a context, PathNet's tournament
replaces `fit`, the reference approaches (`random`) replace both; nothing else overrides them.
docs/design.md#hooks says the same with a worked example.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from dwa_core.approaches.schedule import lr_after_epoch, lr_at_start
from dwa_core.config import NoParams, TrainConfig
from dwa_core.data.types import Split, Task
from dwa_core.observers import NO_OBSERVER, Observer, Stopped

log = logging.getLogger(__name__)


def task_cross_entropy(outputs: Outputs, y: torch.Tensor, t=None, batch: Batch | None = None
                       ) -> torch.Tensor:
    """Mean cross-entropy of the (B, C) logits against (B,) labels: the recorded loss of a task."""
    return F.cross_entropy(outputs.logits, y)


@dataclass(frozen=True)
class Outputs:
    """What `forward` returns and `loss` (and `after_backward`) receive: the (B, n_classes of the
    head) logits, and, in an approach's subclass, whatever else its loss needs from the same
    forward pass (HAT's masks and gate scale, LwF's features, DWA's masks and embeddings), so
    nothing travels between hooks on `self`."""

    logits: torch.Tensor


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class Batch:
    """Where the current batch comes from, as `forward` and `loss` receive it.

    split: the split the batch is drawn from; rows: (B,) int64 row indices into it (the batch is
    split.x[rows]); epoch: the epoch of the task (0-based; in evaluation, the epoch just trained);
    progress: the batch's position in the epoch in [0, 1) while training (HAT anneals s with it,
    Eq. 3), 1.0 in evaluation."""

    split: Split
    rows: torch.Tensor
    epoch: int
    progress: float


class Approach:
    """The training loop of the paper's protocol; see the module docstring for the hooks."""

    Params: ClassVar[type] = NoParams
    family: ClassVar[str] = "plain"
    clip_grad: ClassVar[float] = 10000.0

    def __init__(self, model: nn.Module, train: TrainConfig, params=None, *, seed: int = 0):
        self.model = model
        self.train_cfg = train
        self.params = params if params is not None else self.Params()  # hyper-parameters (Params)
        self.generator = torch.Generator().manual_seed(seed)  # shuffles; saved in checkpoints

    # ---- hooks -------------------------------------------------------------------------------
    def before_task(self, t: int, task: Task) -> None:
        """Once before the first epoch of task t."""

    def training_data(self, t: int, task: Task, earlier: Sequence[Task] = ()
                      ) -> tuple[tuple[Split, object], tuple[Split, object]]:
        """((train, head), (valid, head)) used to fit task t. The head is the task id, or a (N,)
        tensor of per-sample task ids (`joint` trains on the union of `earlier` and task t)."""
        return (task.train, t), (task.valid, t)

    def before_epoch(self, t: int, epoch: int, train: Split) -> None:
        """Each epoch of task t, before its first batch (and before `epoch_indices`)."""

    def epoch_indices(self, t: int, epoch: int, train: Split) -> torch.Tensor | None:
        """(n,) rows of the training split used this epoch (None: all of them)."""
        return None

    def curriculum_done(self, epoch: int) -> bool:
        """False while a curriculum still grows the training set (the lr schedule waits)."""
        return True

    def forward(self, x: torch.Tensor, t, batch: Batch | None = None) -> Outputs:
        """Outputs of head t: (B, n_classes of t) logits (t: an int or a (B,) tensor of task ids)."""
        return Outputs(self.model(x, t))

    def loss(self, outputs: Outputs, y: torch.Tensor, t, batch: Batch | None = None) -> torch.Tensor:
        """Scalar training criterion of a batch from its `forward` outputs (also the evaluation loss)."""
        return F.cross_entropy(outputs.logits, y)

    def validation_loss(self, outputs: Outputs, y: torch.Tensor, t, batch: Batch | None = None
                        ) -> torch.Tensor:
        """The criterion on validation data that decays the lr and picks the weights kept after a
        task, one rule for every approach: the task's cross-entropy (train.valid_loss="ce"), or the
        training criterion `loss` ("total", the original code's)."""
        if self.train_cfg.valid_loss == "ce":
            return F.cross_entropy(outputs.logits, y)
        return self.loss(outputs, y, t, batch)

    def after_backward(self, t: int, outputs: Outputs) -> None:
        """Every training batch: gradients are in `.grad`, not yet clipped or applied; `outputs`:
        the batch's `forward` outputs."""

    def after_step(self, t: int) -> None:
        """Every training batch, after the optimiser step."""

    def after_task(self, t: int, task: Task) -> None:
        """Once after task t's best weights are restored."""

    # ---- state for checkpoints -----------------------------------------------------------------
    def extra_state(self) -> dict:
        """Approach state beyond the model's weights (Fisher, masks, anchors...), as tensors."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "extra": self.extra_state(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.load_extra_state(state["extra"])
        self.generator.set_state(state["generator"])

    # ---- the loop ------------------------------------------------------------------------------
    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.trainable_parameters(), lr=lr)

    def fit(self, t: int, task: Task, earlier: Sequence[Task] = (), observer: Observer = NO_OBSERVER
            ) -> list[dict]:
        """Train task t with the paper's protocol; returns the per-epoch history. `earlier`: the
        benchmark's tasks before t (only `training_data` looks at them); `observer` hears every
        epoch and may stop after any batch (raises observers.Stopped; see observers.py)."""
        self.before_task(t, task)
        (train, head), (valid, valid_head) = self.training_data(t, task, earlier)
        history: list[dict] = []
        self.train_epochs(t, train, head, valid, valid_head, self.train_cfg.epochs, history,
                          label=task.name, observer=observer)
        self.after_task(t, task)
        return history

    def train_epochs(self, t, train: Split, head, valid: Split, valid_head, epochs: int,
                     history: list[dict], tag: dict | None = None, label: str = "",
                     observer: Observer = NO_OBSERVER):
        """Up to `epochs` epochs with a fresh lr schedule; appends a row per epoch to `history`
        (and tells `observer.after_epoch`), restores the best-validation weights and returns (best
        validation loss, those weights). `fit` runs it once per task; PathNet once per path of its
        tournament."""
        cfg, tag = self.train_cfg, tag or {}
        state = lr_at_start(cfg.lr, cfg.warmup_epochs, cfg.warmup_divisor, cfg.lr_patience)
        optimizer = self.make_optimizer(state.lr)
        best = copy.deepcopy(self.model.state_dict())
        for epoch in range(epochs):
            start = time.perf_counter()
            self.before_epoch(t, epoch, train)
            self.train_epoch(t, epoch, train, head, optimizer, observer)
            train_loss, train_acc = self.evaluate(train, head, epoch)
            valid_loss, valid_acc = self.evaluate(valid, valid_head, epoch)
            if not math.isfinite(train_loss):
                where = f"task {t} ({label})" if label else f"task {t}"
                suffix = f" {tag}" if tag else ""
                raise DivergedError(f"{where}, epoch {epoch}{suffix}: loss is {train_loss}")
            row = {"epoch": len(history), **tag, "lr": state.lr, "train_loss": train_loss,
                   "train_acc": train_acc, "valid_loss": valid_loss, "valid_acc": valid_acc}
            state, improved = lr_after_epoch(
                state, epoch, valid_loss, base_lr=cfg.lr, lr_factor=cfg.lr_factor,
                lr_min=cfg.lr_min, lr_patience=cfg.lr_patience, warmup_epochs=cfg.warmup_epochs,
                schedule=cfg.lr_schedule, curriculum_done=self.curriculum_done(epoch))
            if improved:
                best = copy.deepcopy(self.model.state_dict())
            for group in optimizer.param_groups:
                group["lr"] = state.lr
            row.update(best=improved, seconds=time.perf_counter() - start)
            history.append(row)
            log.debug("task %d epoch %d %s", t, row["epoch"], row)
            observer.after_epoch(t, row)
            if state.stop:
                break
        self.model.load_state_dict(best)
        return state.best_loss, best

    def train_epoch(self, t, epoch, train: Split, head, optimizer, observer: Observer = NO_OBSERVER
                    ) -> None:
        """One pass over this epoch's rows of `train` in a seeded random order; raises Stopped
        after the batch at which `observer.stop_requested()` turns True."""
        self.model.train()
        rows = self.epoch_indices(t, epoch, train)
        n = len(train) if rows is None else len(rows)
        order = torch.randperm(n, generator=self.generator).to(train.x.device)
        if rows is not None:
            order = rows[order]
        clip = self.train_cfg.clip_grad or self.clip_grad
        weights = self.trainable_parameters()
        bs = self.train_cfg.batch_size
        for start in range(0, n, bs):
            index = order[start:start + bs]
            batch = Batch(train, index, epoch, start / n)
            x, y = train.x[index], train.y[index]
            hb = head[index] if torch.is_tensor(head) else head
            outputs = self.forward(x, hb, batch)
            loss = self.loss(outputs, y, hb, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.after_backward(t, outputs)
            torch.nn.utils.clip_grad_norm_(weights, clip)
            optimizer.step()
            self.after_step(t)
            if observer.stop_requested():
                raise Stopped(f"task {t}, epoch {epoch}")

    @torch.no_grad()
    def evaluate(self, split: Split, head, epoch: int = 0, criterion: Callable | None = None
                 ) -> tuple[float, float]:
        """Mean loss and accuracy of head `head` on a split (one host sync at the end). criterion:
        (outputs, y, head, batch) -> scalar; default `validation_loss`."""
        criterion = criterion or self.validation_loss
        self.model.eval()
        bs = self.train_cfg.eval_batch_size
        total_loss = split.x.new_zeros(())
        correct = split.x.new_zeros((), dtype=torch.long)
        for start in range(0, len(split), bs):
            index = torch.arange(start, min(start + bs, len(split)), device=split.x.device)
            batch = Batch(split, index, epoch, 1.0)
            x, y = split.x[start:start + bs], split.y[start:start + bs]
            hb = head[start:start + bs] if torch.is_tensor(head) else head
            out = self.forward(x, hb, batch)
            total_loss += criterion(out, y, hb, batch) * len(y)
            correct += (out.logits.argmax(1) == y).sum()
        n = max(len(split), 1)
        return total_loss.item() / n, correct.item() / n

    agnostic: ClassVar[bool] = True  # False: task_agnostic is undefined (NaN) for this approach

    @torch.no_grad()
    def task_agnostic(self, u: int, task: Task, seen: int, split: str = "test") -> tuple[float, float]:
        """(task-agnostic accuracy, task-inference accuracy) on task u's `split` when the task id is
        not given: each sample goes to the head h in 0..seen-1 whose softmax is most confident
        (max over classes of softmax(forward(x, h))), and is predicted by it. Task inference is the
        fraction of task u's samples given to head u. The same rule for every approach (for DWA the
        masks follow the input alone, so only the head is inferred). (nan, nan) when `agnostic` is
        False (an approach that swaps weights per task at test time)."""
        if not self.agnostic:
            return float("nan"), float("nan")
        split_data = getattr(task, split)
        self.model.eval()
        bs = self.train_cfg.eval_batch_size
        correct = inferred = 0
        for start in range(0, len(split_data), bs):
            x, y = split_data.x[start:start + bs], split_data.y[start:start + bs]
            index = torch.arange(start, start + len(y), device=x.device)
            batch = Batch(split_data, index, 0, 1.0)
            confidence, prediction = [], []
            for h in range(seen):
                probs = F.softmax(self.forward(x, h, batch).logits, dim=1)
                best, label = probs.max(1)
                confidence.append(best)
                prediction.append(label)
            head = torch.stack(confidence).argmax(0)  # (B,): the most confident head
            predicted = torch.stack(prediction).gather(0, head[None])[0]
            correct += int((predicted == y).sum())
            inferred += int((head == u).sum())
        n = max(len(split_data), 1)
        return correct / n, inferred / n

    def test(self, u: int, task: Task, split: str = "test") -> tuple[float, float]:
        """Cross-entropy and accuracy of head u on task u's `split` ("test" or "valid";
        run_experiment calls both for every u <= t: the test matrix is reported, the validation one
        selects hyper-parameters). The loss is the task's cross-entropy whatever the approach's
        training criterion (no penalty, no distillation term)."""
        return self.evaluate(getattr(task, split), u, criterion=task_cross_entropy)
