"""The learning-rate protocol of docs/original-code.md#training-loop as a small pure state machine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LRState:
    """lr, best validation loss and remaining patience; `stop` ends the task's epoch loop."""

    lr: float
    best_loss: float = float("inf")
    patience: int = 0
    stop: bool = False


def lr_at_start(base_lr: float, warmup_epochs: int, warmup_divisor: float, patience: int) -> LRState:
    lr = base_lr / warmup_divisor if warmup_epochs > 0 else base_lr
    return LRState(lr=lr, patience=patience)


def lr_after_epoch(state: LRState, epoch: int, valid_loss: float, *, base_lr: float,
                   lr_factor: float, lr_min: float, lr_patience: int, warmup_epochs: int,
                   schedule: str, curriculum_done: bool = True) -> tuple[LRState, bool]:
    """Advance the schedule after `epoch`; returns (new state, improved?).

    "paper": after `lr_patience` epochs without improvement, lr /= lr_factor; stop once
    lr < lr_min. No decay during warm-up. "original-code": patience only counts down when the
    curriculum is done and epoch <= warmup_epochs, otherwise it resets (so it never decays
    without warm-up: docs/original-code.md#training-loop)."""
    state = LRState(state.lr, state.best_loss, state.patience, False)
    improved = valid_loss < state.best_loss
    in_warmup = epoch < warmup_epochs
    if improved:
        state.best_loss, state.patience = valid_loss, lr_patience
    elif schedule == "original-code" and not (curriculum_done and epoch <= warmup_epochs):
        state.patience = lr_patience
    elif schedule == "paper" and in_warmup:
        pass
    else:
        state.patience -= 1
        if state.patience <= 0:
            state.lr /= lr_factor
            if state.lr < lr_min:
                state.stop = True
            state.patience = lr_patience
    if warmup_epochs > 0 and epoch == warmup_epochs - 1 and not state.stop:
        state.lr = base_lr  # warm-up ends: back to the base rate
    return state, improved
