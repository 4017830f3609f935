"""PathNet (Fernando et al. 2017) as in the original code (docs/original-code.md#approaches `pathnet`),
with its
crash fixed.

Per task: P paths (an (L, N) table of module ids) compete for `generations` rounds; each path trains
for epochs // generations epochs with its own lr schedule, the one with the lowest validation loss
wins and every loser becomes a mutated copy of the winner. Modules on earlier tasks' best paths are
frozen; at a new task every other module is reset to its initial weights. The original code's constructor
shifted its positional arguments (clipgrad became None) and crashed on the first batch.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from dwa_core.approaches import register
from dwa_core.approaches.base import Approach, Outputs
from dwa_core.fields import Bounds, param, validate
from dwa_core.observers import NO_OBSERVER


@dataclass(frozen=True)
class PathNetParams:
    """PathNet's hyper-parameters (Fernando et al. 2017)."""

    generations: int = param(20, bounds=Bounds(1), source="original default",
                             doc="tournament rounds per task (each path trains epochs // generations epochs)")
    paths: int = param(2, bounds=Bounds(2), doc="P, paths that compete in each generation")

    def __post_init__(self):
        validate(self, "approach_params.")


def random_path(layers: int, active: int, modules: int, generator) -> torch.Tensor:
    """(L, N) module ids drawn uniformly from [0, M) (repeats allowed, as in the original code)."""
    return torch.randint(0, modules, (layers, active), generator=generator)


def mutate(path: torch.Tensor, modules: int, generator, prob: float | None = None) -> torch.Tensor:
    """Each entry, with probability 1/(N*L), gets a random integer in [-2, 2] added, mod M."""
    prob = 1.0 / path.numel() if prob is None else prob
    hit = torch.rand(path.shape, generator=generator) < prob
    delta = torch.randint(-2, 3, path.shape, generator=generator)
    return torch.where(hit, (path + delta) % modules, path)


def as_tuple(path: torch.Tensor) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(row) for row in path.tolist())


@register("pathnet")
class PathNet(Approach):
    """Tournament of paths over a pool of modules; earlier tasks' best paths frozen."""

    Params = PathNetParams
    family = "pathnet"
    clip_grad = 1000.0

    def __init__(self, model, train, params=None, *, seed=0):
        super().__init__(model, train, params, seed=seed)
        self.initial = copy.deepcopy(model.state_dict())
        self.best_paths: list[tuple] = []  # best path of each finished task
        self.path = None  # the path being trained (None: each task's stored path)

    def frozen_modules(self) -> set[tuple[int, int]]:
        return {(layer, m) for path in self.best_paths for layer, row in enumerate(path) for m in row}

    def before_task(self, t, task):
        frozen = self.frozen_modules()
        for layer, mods in enumerate(self.model.layers):
            for m, module in enumerate(mods):
                if (layer, m) not in frozen and t > 0:
                    prefix = f"layers.{layer}.{m}."
                    module.load_state_dict({k[len(prefix):]: v for k, v in self.initial.items()
                                            if k.startswith(prefix)})
                module.requires_grad_((layer, m) not in frozen)
        for u, head in enumerate(self.model.last.heads):
            head.requires_grad_(u == t)

    def forward(self, x, t, batch=None):
        return Outputs(self.model(x, t, path=self.path))

    def fit(self, t, task, earlier=(), observer=NO_OBSERVER):
        p, model = self.params, self.model
        self.before_task(t, task)
        (train, head), (valid, valid_head) = self.training_data(t, task, earlier)
        paths = [random_path(model.n_layers, model.n_active, model.n_modules, self.generator)
                 for _ in range(p.paths)]
        epochs = max(1, self.train_cfg.epochs // p.generations)
        rows, best = [], (math.inf, paths[0], copy.deepcopy(model.state_dict()))
        for g in range(p.generations):
            losses = []
            for k, path in enumerate(paths):
                self.path = as_tuple(path)
                loss, weights = self.train_epochs(t, train, head, valid, valid_head, epochs, rows,
                                                  {"generation": g, "path": k}, task.name, observer)
                losses.append(loss)
                if loss < best[0]:
                    best = (loss, path.clone(), weights)
            winner = min(range(len(paths)), key=losses.__getitem__)
            paths = [paths[winner] if k == winner else mutate(paths[winner], model.n_modules, self.generator)
                     for k in range(len(paths))]
        self.path = None
        model.load_state_dict(best[2])
        self.best_paths.append(as_tuple(best[1]))
        model.task_paths[t] = self.best_paths[t]
        self.after_task(t, task)
        return rows

    def extra_state(self):
        return {"best_paths": [list(map(list, path)) for path in self.best_paths]}

    def load_extra_state(self, state):
        self.best_paths = [as_tuple(torch.tensor(path)) for path in state["best_paths"]]
        self.model.task_paths.update(enumerate(self.best_paths))
