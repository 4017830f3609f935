"""The data types: a Split, a Task and a Benchmark (a list of tasks), which every benchmark
produces, and the RawDataset a source decodes and the cache stores."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Split:
    """One split of a task: images `x` (N, C, H, W) float and labels `y` (N,) int64 from 0."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self):
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}")

    def __len__(self) -> int:
        return self.y.shape[0]

    def to(self, device) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Task:
    """One task of a task-incremental benchmark: its own label space and its own output head."""

    name: str
    n_classes: int
    train: Split
    valid: Split
    test: Split

    def to(self, device) -> Task:
        return Task(self.name, self.n_classes, self.train.to(device), self.valid.to(device),
                    self.test.to(device))


@dataclass
class Benchmark:
    """An ordered list of tasks sharing one input shape; `network` is the paper's network for it."""

    name: str
    tasks: list[Task]
    input_shape: tuple[int, int, int]
    network: str = "mlp"
    info: dict = field(default_factory=dict)

    @property
    def task_classes(self) -> list[int]:
        return [task.n_classes for task in self.tasks]

    def __len__(self) -> int:
        return len(self.tasks)

    def to(self, device) -> Benchmark:
        return Benchmark(self.name, [t.to(device) for t in self.tasks], self.input_shape,
                         self.network, dict(self.info))


@dataclass
class RawDataset:
    """A decoded dataset as a source returns it (data/sources.py) and the cache stores it."""

    name: str
    n_classes: int
    train_x: torch.Tensor  # (N, C, H, W) uint8
    train_y: torch.Tensor  # (N,) int64
    test_x: torch.Tensor
    test_y: torch.Tensor
