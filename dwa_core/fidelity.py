"""The fidelity switches: each place where the original research code does something other than the
papers say (or than works), with the value that gives either behaviour
(docs/original-code.md#training-loop, #dwa, #bugs-fixed-without-a-switch).

`SWITCHES` is the catalogue (the README and notebook 10 show it); `flip(cfg, switch)` returns a
config with one switch set to the original code's value, so its effect can be measured alone;
the `original-code` preset sets all of DWA's at once.

    from dwa_core import fidelity
    cfg = fidelity.flip(cfg, fidelity.get("dwa", "triplet_form"))
"""

from __future__ import annotations

from dataclasses import dataclass

from dwa_core.config import ExperimentConfig


@dataclass(frozen=True)
class Switch:
    owner: str  # "train", "network" (network_params) or an approach name (its approach_params)
    field: str
    default: object  # the library's default: the paper's reading (or the fix of a bug)
    original: object  # what the original code does
    what: str  # what the original does, in one line

    @property
    def name(self) -> str:
        return f"{self.owner}.{self.field}"


SWITCHES = (
    Switch("train", "lr_schedule", "paper", "original-code",
           "the lr decay condition never fires: constant lr for all epochs, no early stop"),
    Switch("network", "gate", "tanh", "sigmoid",
           "DWA's code default gate is sigmoid; the paper and the published runs use tanh"),
    Switch("dwa", "triplet_form", "paper", "original-code",
           "triplet on Frobenius norms of the whole batch, unsquared, divided by 1 + δ, summed over it"),
    Switch("dwa", "plasticity_form", "paper", "original-code",
           "mean of |H|·F over batch and weights, no η and no positive part (Eq. 5: Σ F·relu(ηH))"),
    Switch("dwa", "sparsity_form", "paper", "original-code",
           "penalises mean(1 - |H|) above μ, pushing masks to be dense (Eq. 6 asks for sparse ones)"),
    Switch("dwa", "anchor_ranking", "paper", "last-batch",
           "ranks negative-anchor candidates by the CE of the last anchor batch only"),
    Switch("dwa", "anchor_threshold", None, 0.4,
           "anchor samples: the first n with ζ < 0.4 instead of the n lowest-ζ samples"),
    Switch("dwa", "fisher_accumulate", False, True,
           "the Fisher's gradients are never zeroed: each batch adds the square of a running sum"),
    Switch("dwa", "stiff_uncapped", False, True, "the stiffness ramp σ = e / stiff keeps growing past 1"),
    Switch("random", "latest_task_labels", False, True,
           "predicts every earlier task with the latest task's labels"),
    Switch("imm-mode", "merge", True, False,
           "the Fisher-weighted merge is computed into a local variable and lost: L2 transfer only"),
    Switch("imm-mean", "merge_heads", True, True,
           "merges the heads too (a new head is averaged with its random init); False: trunk only"),
    Switch("lfl", "reduction", "mean", "sum", "the feature penalty is summed over the batch"),
    Switch("lfl", "seed_dropout_mismatch", False, True,
           "penalises dropout-noised features against the old model's clean ones"),
)


def get(owner: str, field: str) -> Switch:
    for switch in SWITCHES:
        if (switch.owner, switch.field) == (owner, field):
            return switch
    known = ", ".join(s.name for s in SWITCHES)
    raise KeyError(f"no fidelity switch {owner}.{field}; known: {known}")


def of(approach: str) -> list[Switch]:
    """The switches that act on a run of `approach` (its own, the training protocol's, and the
    DWA network's for dwa)."""
    owners = {"train", approach} | ({"network"} if approach == "dwa" else set())
    return [s for s in SWITCHES if s.owner in owners]


def flip(cfg: ExperimentConfig, switch: Switch, value=None) -> ExperimentConfig:
    """`cfg` with `switch` set to `value` (default: the original code's value)."""
    value = switch.original if value is None else value
    if switch.owner == "train":
        return cfg.replace(train={switch.field: value})
    if switch.owner == "network":
        return cfg.replace(network_params={**cfg.network_params, switch.field: value})
    if switch.owner != cfg.approach:
        raise ValueError(f"{switch.name} is a switch of {switch.owner!r}, not of {cfg.approach!r}")
    return cfg.replace(approach_params={**cfg.approach_params, switch.field: value})


def table() -> list[dict]:
    """The catalogue as rows (for a DataFrame)."""
    return [{"switch": s.name, "default": s.default, "original code": s.original,
             "what the original does": s.what} for s in SWITCHES]
