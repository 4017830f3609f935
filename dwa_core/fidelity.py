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
from dwa_core.curriculum import Curriculum


@dataclass(frozen=True)
class Switch:
    owner: str  # "train", "network" (network_params), an approach (approach_params) or a benchmark
    field: str
    default: object  # the library's default: the paper's reading (or the fix of a bug)
    original: object  # what the original code does
    what: str  # what the original does, in one line
    requires: tuple = ()  # (field, value) pairs of the same owner that the original value needs

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
           "the Fisher's gradients are never zeroed: each batch adds the square of a running sum",
           requires=(("fisher_form", "batch"),)),
    Switch("dwa", "fisher_form", "per-sample", "batch",
           "DWA's Fisher = |B|·(mean gradient of a batch of 20)², not the mean of per-sample squared gradients"),
    Switch("train", "valid_loss", "ce", "total",
           "validation loss = the training criterion with its penalty (for DWA the σ-ramped, anchor-dependent "
           "Eq. 7 total, which can keep an unlearned epoch)"),
    Switch("dwa", "fisher_mode", "eval", "train", "the Fisher pass runs in train mode (σ of the last epoch)"),
    Switch("dwa", "fisher_combine", "sum", "mean",
           "the tasks' Fisher diagonals are averaged, (F_t + t·F)/(t + 1): each old task's weight shrinks as 1/(t+1)"),
    Switch("dwa", "stiff_uncapped", False, True, "the stiffness ramp σ = e / stiff keeps growing past 1"),
    Switch("random", "latest_task_labels", False, True,
           "predicts every earlier task with the latest task's labels"),
    Switch("imm-mode", "merge", True, False,
           "the Fisher-weighted merge is computed into a local variable and lost: L2 transfer only"),
    Switch("imm-mean", "merge_heads", False, True,
           "merges the heads too: a new head is averaged with its random init (80 % init at t = 4)"),
    Switch("imm-mode", "merge_heads", False, True,
           "the intended merge covers the heads too (the original's merge itself is a no-op)"),
    Switch("imm-mode", "fisher_form", "per-sample", "batch",
           "Fisher = |B|·(mean gradient of a batch of 20)², not the mean of per-sample squared gradients"),
    Switch("ewc", "fisher_form", "per-sample", "batch",
           "Fisher = |B|·(mean gradient of a batch of 20)²: ~15x smaller than the per-sample one on digits"),
    Switch("ewc", "fisher_mode", "eval", "train",
           "the Fisher is computed with dropout active: larger and different on every call"),
    Switch("ewc", "fisher_combine", "sum", "mean",
           "the tasks' Fisher diagonals are averaged, (F_t + t·F)/(t + 1): each old task's penalty shrinks as 1/(t+1)"),
    Switch("imm-mode", "fisher_mode", "eval", "train",
           "the Fisher of the merge weights is computed with dropout active"),
    Switch("mnist2", "valid_is_train_copy", False, True,
           "the validation set (lr decay, best model) is a copy of the training set"),
    Switch("pmnist", "valid_is_train_copy", False, True,
           "the validation set (lr decay, best model) is a copy of the training set"),
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
    """`cfg` with `switch` set to `value` (default: the original code's value, together with the
    settings it `requires`, e.g. DWA's fisher_accumulate needs the batch-form Fisher)."""
    value = switch.original if value is None else value
    if switch.requires and value == switch.original and switch.owner == cfg.approach:
        cfg = cfg.replace(approach_params={**cfg.approach_params, **dict(switch.requires)})
    if switch.owner == "train":
        return cfg.replace(train={switch.field: value})
    if switch.owner == "network":
        return cfg.replace(network_params={**cfg.network_params, switch.field: value})
    if switch.owner == cfg.benchmark:
        return cfg.replace(benchmark_params={**cfg.benchmark_params, switch.field: value})
    if switch.owner != cfg.approach:
        raise ValueError(f"{switch.name} is a switch of {switch.owner!r}, not of {cfg.approach!r}")
    return cfg.replace(approach_params={**cfg.approach_params, switch.field: value})


@dataclass(frozen=True)
class Audited:
    """One default checked against the papers and the original code: `where` is "train", "network:<name>"
    (a constructor keyword of that network), "config" (ExperimentConfig), an approach or a
    benchmark; `value` the library's default (tested against the code)."""

    where: str
    field: str
    value: object
    source: str  # where the value comes from
    note: str = ""


# The audit of issue 12: every default below was compared with the papers and the original code
# (docs/original-code.md); the ones
# that were the original code's and not the papers' became switches (SWITCHES above).
AUDIT = (
    Audited("config", "weight_init", "kaiming:xavier",
            "paper / every original script (He-normal convs, Xavier-uniform dense)",
            "'pytorch' = PyTorch's default, what the original code did without --weight_init"),
    Audited("config", "task order", "seeded", "original code: shuffle(arange(T), random_state=seed)",
            "benchmark_params task_order: 'seeded', 'natural' or a list"),
    Audited("train", "lr", 0.05, "HAT paper, original run.py"),
    Audited("train", "batch_size", 64, "HAT paper / original BaseApproach (DWA's 32: preset 'paper')"),
    Audited("train", "lr_min", 1e-4, "HAT paper"), Audited("train", "lr_factor", 3.0, "HAT paper"),
    Audited("train", "lr_patience", 5, "HAT paper"),
    Audited("train", "warmup_epochs", 0, "HAT paper (DWA's 10 epochs at lr/750: preset 'paper')"),
    Audited("ewc", "lamb", 5000.0, "HAT paper's comparison"),
    Audited("ewc", "fisher_form", "per-sample", "Kirkpatrick et al. 2017 (switch: 'batch')"),
    Audited("ewc", "fisher_mode", "eval", "the Fisher of the trained model, not of a dropout sample (switch: 'train')"),
    Audited("ewc", "fisher_combine", "sum", "Kirkpatrick et al. 2017: one penalty per task (switch: 'mean')"),
    Audited("train", "valid_loss", "ce", "the task's cross-entropy for every approach (switch: 'total')"),
    Audited("imm-mode", "fisher_mode", "eval", "as EWC's (switch: 'train')"),
    Audited("dwa", "fisher_mode", "eval", "as EWC's (switch: 'train')"),
    Audited("dwa", "fisher_combine", "sum", "EWC's sum, which the DWA paper follows (switch: 'mean')"),
    Audited("lwf", "lamb", 2.0, "HAT paper's grid, original default"),
    Audited("lwf", "temperature", 1.0, "HAT paper's grid, original default"),
    Audited("lfl", "lamb", 0.05, "original default"),
    Audited("lfl", "reduction", "mean", "per-sample penalty (switch: 'sum')"),
    Audited("imm-mean", "regularizer", 1e-4, "original default"),
    Audited("imm-mean", "merge_heads", False, "IMM: the trunk is merged, each task keeps its head"),
    Audited("imm-mode", "lamb", 0.01, "original default"),
    Audited("imm-mode", "merge", True, "IMM paper (the original's merge is a no-op: switch)"),
    Audited("hat", "c", 0.75, "HAT paper"), Audited("hat", "s_max", 400.0, "HAT paper"),
    Audited("hat", "thres_cosh", 50.0, "HAT paper / original"),
    Audited("hat", "thres_emb", 6.0, "HAT paper / original"),
    Audited("pathnet", "generations", 20, "original default"),
    Audited("dwa", "lamb_triplet", 20.0, "DWA paper (λ1)"),
    Audited("dwa", "lamb_plasticity", 0.1, "DWA paper (λ2; the published run: 0.05)"),
    Audited("dwa", "lamb_sparsity", 500.0, "DWA paper (λ3)"),
    Audited("dwa", "sparsity_mu", 0.2, "DWA paper (μ)"), Audited("dwa", "alpha", 1.5, "DWA paper (α)"),
    Audited("dwa", "curriculum", Curriculum.parse("linear:100:0.2"), "DWA paper"),
    Audited("dwa", "anchor_threshold", None, "DWA paper: the n lowest-ζ samples (switch: 0.4)"),
    Audited("dwa", "fisher_accumulate", False, "DWA paper: the standard diagonal Fisher"),
    Audited("dwa", "fisher_form", "per-sample", "DWA paper (EWC's Fisher; switch: 'batch')",
            "one backward per training sample of the whole DWA loss: the masked kernels batch samples"),
    Audited("network:alexnet-dwa", "gate", "tanh", "DWA paper (switch: sigmoid)"),
    Audited("network:alexnet-dwa", "emb_size", 100, "DWA paper"),
    Audited("network:alexnet-dwa", "use_stem", 1, "DWA paper"),
    Audited("network:mlp", "hidden", 800, "original mlp"),
    Audited("network:mlp", "layers", 3, "original mlp"),
    Audited("network:mlp", "dropout", 0.5, "original mlp"),
    Audited("network:mlp-hat", "hidden", 2000, "original mlp_hat"),
    Audited("mnist2", "valid_is_train_copy", False, "a held-out 10 % (switch: the original's copy)"),
    Audited("mixture", "fixed_order", False, "original: seeded order (seed 0 = the published one)"),
    Audited("mixture", "valid_fraction", 0.15, "original code (docs/original-code.md#benchmarks)"),
    Audited("cifar", "valid_fraction", 0.1, "original code (docs/original-code.md#benchmarks)"),
)


def audit_table() -> list[dict]:
    """The audit as rows (for a DataFrame)."""
    return [{"where": a.where, "field": a.field, "default": a.value, "source": a.source, "note": a.note}
            for a in AUDIT]


def table() -> list[dict]:
    """The catalogue as rows (for a DataFrame)."""
    return [{"switch": s.name, "default": s.default, "original code": s.original,
             "what the original does": s.what} for s in SWITCHES]
