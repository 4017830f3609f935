"""The one training loop (seed_spec §3) and the hooks every approach overrides.

An approach subclasses `Approach`, sets `Params` (its hyper-parameter dataclass), `family`
(the network family it needs) and `clip_grad` (its default), and overrides some of:

    before_task(t, task)    once before the first epoch     (warm-up, new column, reset)
    epoch_indices(t, e, n)  each epoch: which training rows (curriculum)
    forward(x, t)           every batch                      (masked forward)
    loss(outputs, y, t)     every batch and in evaluation    (CE + penalty)
    after_backward(t)       every batch, before the step     (gradient masking)
    after_step(t)           every batch, after the step      (clamps)
    after_task(t, task)     once after the best weights are restored (Fisher, masks, anchors)

`self.progress` is the position of the current batch in the epoch, in [0, 1) (HAT anneals s
with it); `self.batch_index` holds the training-set rows of the current batch.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from dwa_core.approaches.schedule import lr_after_epoch, lr_at_start
from dwa_core.config import NoParams, TrainConfig
from dwa_core.data.types import Split, Task

log = logging.getLogger(__name__)


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


class Approach:
    Params: ClassVar[type] = NoParams
    family: ClassVar[str] = "plain"
    clip_grad: ClassVar[float] = 10000.0
    scenarios: ClassVar[tuple[str, ...]] = ("task-incremental",)

    def __init__(self, model: nn.Module, train: TrainConfig, params=None, *, seed: int = 0):
        self.model = model
        self.train_cfg = train
        self.params = params if params is not None else self.Params()
        self.generator = torch.Generator().manual_seed(seed)  # shuffles; saved in checkpoints
        self.progress = 0.0
        self.batch_index: torch.Tensor | None = None
        self.on_epoch: Callable[[int, int, dict], None] | None = None  # progress callback
        self.tasks: list[Task] = []  # the benchmark's tasks, set by run_experiment

    # ---- hooks -------------------------------------------------------------------------------
    def before_task(self, t: int, task: Task) -> None:
        pass

    def epoch_indices(self, t: int, epoch: int, n: int, device) -> torch.Tensor | None:
        """Rows of the training set used this epoch (None: all)."""
        return None

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        return self.model(x, t)

    def loss(self, outputs: torch.Tensor, y: torch.Tensor, t) -> torch.Tensor:
        return F.cross_entropy(outputs, y)

    def after_backward(self, t: int) -> None:
        pass

    def after_step(self, t: int) -> None:
        pass

    def after_task(self, t: int, task: Task) -> None:
        pass

    def training_data(self, t: int, task: Task) -> tuple[tuple[Split, object], tuple[Split, object]]:
        """((train, head), (valid, head)) used to fit task t. The head is the task id, or a (N,)
        tensor of per-sample task ids (`joint` trains on the union of tasks 0..t)."""
        return (task.train, t), (task.valid, t)

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

    def fit(self, t: int, task: Task) -> list[dict]:
        """Train task t with the paper's protocol; returns the per-epoch history."""
        self.before_task(t, task)
        (train, head), (valid, valid_head) = self.training_data(t, task)
        history: list[dict] = []
        self.train_epochs(t, train, head, valid, valid_head, self.train_cfg.epochs, history,
                          label=task.name)
        self.after_task(t, task)
        return history

    def train_epochs(self, t, train: Split, head, valid: Split, valid_head, epochs: int,
                     history: list[dict], tag: dict | None = None, label: str = ""):
        """Up to `epochs` epochs with a fresh lr schedule; appends a row per epoch to `history`,
        restores the best-validation weights and returns (best validation loss, those weights).
        `fit` runs it once per task; PathNet once per path of its tournament."""
        cfg, tag = self.train_cfg, tag or {}
        state = lr_at_start(cfg.lr, cfg.warmup_epochs, cfg.warmup_divisor, cfg.lr_patience)
        optimizer = self.make_optimizer(state.lr)
        best = copy.deepcopy(self.model.state_dict())
        for epoch in range(epochs):
            start = time.perf_counter()
            self.train_epoch(t, epoch, train, head, optimizer)
            train_loss, train_acc = self.evaluate(train, head)
            valid_loss, valid_acc = self.evaluate(valid, valid_head)
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
            if self.on_epoch is not None:
                self.on_epoch(t, row["epoch"], row)
            if state.stop:
                break
        self.model.load_state_dict(best)
        return state.best_loss, best

    def curriculum_done(self, epoch: int) -> bool:
        return True

    def train_epoch(self, t, epoch, train: Split, head, optimizer) -> None:
        self.model.train()
        rows = self.epoch_indices(t, epoch, len(train), train.x.device)
        n = len(train) if rows is None else len(rows)
        order = torch.randperm(n, generator=self.generator).to(train.x.device)
        if rows is not None:
            order = rows[order]
        clip = self.train_cfg.clip_grad or self.clip_grad
        params = self.trainable_parameters()
        bs = self.train_cfg.batch_size
        for start in range(0, n, bs):
            index = order[start:start + bs]
            self.progress, self.batch_index = start / n, index
            x, y = train.x[index], train.y[index]
            hb = head[index] if torch.is_tensor(head) else head
            loss = self.loss(self.forward(x, hb), y, hb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.after_backward(t)
            torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
            self.after_step(t)

    @torch.no_grad()
    def evaluate(self, split: Split, head) -> tuple[float, float]:
        """Mean loss and accuracy of head `head` on a split (one host sync at the end)."""
        self.model.eval()
        self.progress, bs = 1.0, self.train_cfg.eval_batch_size
        total_loss = split.x.new_zeros(())
        correct = split.x.new_zeros((), dtype=torch.long)
        for start in range(0, len(split), bs):
            index = torch.arange(start, min(start + bs, len(split)), device=split.x.device)
            self.batch_index = index
            x, y = split.x[start:start + bs], split.y[start:start + bs]
            hb = head[start:start + bs] if torch.is_tensor(head) else head
            out = self.forward(x, hb)
            total_loss += self.loss(out, y, hb) * len(y)
            correct += (out.argmax(1) == y).sum()
        n = max(len(split), 1)
        return total_loss.item() / n, correct.item() / n

    def test(self, u: int, task: Task) -> tuple[float, float]:
        """Test loss and accuracy on task u (called by run_experiment for every u <= t)."""
        return self.evaluate(task.test, u)
