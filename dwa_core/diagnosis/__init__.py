"""Why DWA forgets, measured (docs/why-dwa-forgets.md). For every earlier task u and later task t,
on u's samples: how far u's masks moved (paper §3.2, Eq. 3: H = gate(generator(E))), how much they
overlap with t's, how much the shared weights W moved where u's masks use them, and how far u's
embeddings E moved; next to u's accuracy drop acc[u][u] - acc[t][u].

Reads a run made with `task_snapshots=True` (the model's state_dict after every task, task-<t>.pt)
and its results.json. `python -m dwa_core.diagnosis RUN_DIR ... --label NAME ... --output FILE.json`
(the `diagnosis` command of cli.py) writes the measures of several runs as one data file
(`save_diagnosis` / `load_diagnosis`)."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from copy import deepcopy
from pathlib import Path
from typing import Literal, get_args

import torch

from dwa_core import data, numerics
from dwa_core.approaches.dwa import DWAParams
from dwa_core.config import ExperimentConfig, build_params, check
from dwa_core.diagnosis.embedding import embedding_frame, mean_ci_text, pair_columns
from dwa_core.experiment import build_approach, load_run, snapshot_path, validate
from dwa_core.functional.drift import (
    binary_overlap_parts,
    change_parts,
    mask_pair_sums,
    overlap_parts,
    ratio,
)
from dwa_core.results import atomic_write

log = logging.getLogger(__name__)
Split = Literal["test", "valid"]
ALL_LAYERS = "all"  # the `layer` of the rows aggregated over every masked layer
# what each row measures, as (numerator, denominator) summed over layers for the "all" rows
MEASURES = ("mask_drift", "mask_cross", "overlap", "overlap_binary", "weight_change",
            "weight_change_unweighted", "effective_change")
EMBEDDING = ("embedding_drift", "embedding_saturation", "embedding_spread", "embedding_saturation_before",
             "task_separability")
SUMMARY = ("final_accuracy", "learning_accuracy", "forgetting", "acc_drop", *MEASURES, *EMBEDDING)


class DiagnosisError(ValueError):
    """A run folder the diagnosis cannot read (no snapshots, not a DWA run, ...): names the path."""


# ---- reading a run ------------------------------------------------------------------------------
def snapshot_files(run_dir) -> list[Path]:
    """task-0.pt, task-1.pt, ... of a run made with `task_snapshots=True` (experiment.snapshot_path).
    DiagnosisError naming the path when the folder or its snapshots are missing or the numbering
    has a gap (a run resumed with task_snapshots turned on part-way)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DiagnosisError(f"{run_dir}: no such run folder")
    found = sorted(int(p.stem[5:]) for p in run_dir.glob("task-*.pt") if p.stem[5:].isdigit())
    if not found:
        raise DiagnosisError(f"{run_dir}: no task snapshots ({snapshot_path(run_dir, 0).name}, ...); "
                             f"rerun it with task_snapshots=True (--set task_snapshots=true)")
    missing = sorted(set(range(found[-1] + 1)) - set(found))
    if missing:
        raise DiagnosisError(f"{snapshot_path(run_dir, missing[0])} is missing (the run has snapshots "
                             f"of tasks {found}); rerun it from task 0 with task_snapshots=True")
    return [snapshot_path(run_dir, t) for t in found]


def load_snapshots(run_dir) -> list[dict]:
    """The state_dicts after tasks 0, 1, ... (snapshot_files), on the CPU; DiagnosisError naming the
    path as snapshot_files does, or naming an unreadable file."""
    return [_load_snapshot(path) for path in snapshot_files(run_dir)]


def _load_snapshot(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, not a torch file, ...
        raise DiagnosisError(f"{path}: unreadable snapshot ({type(err).__name__})") from err


def rebuild_run(run_dir: Path, device, data_dir):
    """(results, benchmark, model) of a DWA run folder: its config, on `device`, with an untrained
    network (load a snapshot into it: load_snapshots). DiagnosisError for a run of another family;
    ResultsError / ConfigError for an unreadable run or config."""
    results = load_run(run_dir)
    values = {**results.config, "device": str(device)}
    if data_dir is not None:
        values["data_dir"] = str(data_dir)
    cfg = ExperimentConfig.from_dict(values)
    plan = validate(cfg)
    if plan.approach_cls.family != "dwa":
        raise DiagnosisError(f"{run_dir}: a {cfg.approach!r} run; the diagnosis needs a DWA network")
    bench = data.load_benchmark(cfg, torch.device(device))
    return results, bench, build_approach(cfg, plan, bench, torch.device(device)).model


# ---- the diagnosis ------------------------------------------------------------------------------
@torch.no_grad()
def _forward(model, x: torch.Tensor, u: int):
    """E (B, d) and {weight name: H (B, *weight shape)} of `model` on x with task id u."""
    model(x, u)
    return model.state.embedding, {k: m.materialise() for k, m in model.state.masks.items()}


def _accumulate(models, weights, inputs, chunk: int):
    """Sums over every chunk of samples of task u, for each model k >= u, t > u and layer name:
    mean_abs[k, u, name] = Σ_b |H_u,b^(k)| (out, in); pairs[t, u, name] = mask_pair_sums (5,);
    emb[t, u] = (Σ_b ||E_u,b^(t) - E_u,b^(u)||, Σ_b ||E_u,b^(u)||). All stay on the device."""
    mean_abs, pairs, emb = defaultdict(int), defaultdict(int), defaultdict(int)
    for u, x_all in enumerate(inputs):
        for x in x_all.split(chunk):
            e_ref, h_ref = _forward(models[u], x, u)
            for name, h in h_ref.items():
                mean_abs[u, u, name] += h.abs().sum(0)
            for t in range(u + 1, len(models)):
                e_new, h_new = _forward(models[t], x, u)
                for name, h in h_new.items():
                    mean_abs[t, u, name] += h.abs().sum(0)
                    pairs[t, u, name] += mask_pair_sums(h_ref[name], h, weights[u][name], weights[t][name])
                emb[t, u] += torch.stack([(e_new - e_ref).norm(dim=1).sum(), e_ref.norm(dim=1).sum()])
    return mean_abs, pairs, emb


def _layer_parts(t, u, name, n, sums, weights) -> dict:
    """{measure: (numerator, denominator)} of one layer for the pair (t, u); n: samples per task."""
    mean_abs, pairs, _ = sums
    s = pairs[t, u, name].tolist()
    mask_u, mask_t = mean_abs[u, u, name] / n[u], mean_abs[t, t, name] / n[t]
    mask_u_after = mean_abs[t, u, name] / n[u]
    w_before, w_after = weights[u][name], weights[t][name]
    return {"mask_drift": (s[0], s[2]), "mask_cross": (s[1], s[2]),
            "overlap": overlap_parts(mask_u_after, mask_t),
            "overlap_binary": binary_overlap_parts(mask_u_after, mask_t),
            "weight_change": change_parts(w_before, w_after, mask_u),
            "weight_change_unweighted": change_parts(w_before, w_after),
            "effective_change": (s[3], s[4])}


def _load_models(run_dir: Path, device, data_dir):
    """(results, benchmark, [model after task k, in eval mode], its masked weight names)."""
    snapshots = load_snapshots(run_dir)
    results, bench, model = rebuild_run(run_dir, device, data_dir)
    n_tasks = min(len(snapshots), results.completed_tasks)
    if n_tasks < 2:
        raise DiagnosisError(f"{run_dir}: {n_tasks} finished task(s) with a snapshot; the diagnosis needs 2")
    models = [deepcopy(model) for _ in range(n_tasks)]
    for m, state in zip(models, snapshots):
        m.load_state_dict(state)
        m.eval()
    return results, bench, models, model.masked_weight_names()


def _inputs(bench, n_tasks: int, split: str, samples: int, seed: int) -> list[torch.Tensor]:
    """Up to `samples` inputs of each task's split, a fixed random subset (the same for every model)."""
    generator, out = torch.Generator().manual_seed(seed), []
    for task in bench.tasks[:n_tasks]:
        part = getattr(task, split)
        out.append(part.x[torch.randperm(len(part), generator=generator)[:samples].to(part.x.device)])
    return out


def diagnose_run(run_dir, samples_per_task: int = 200, device="cpu", *, split: Split = "test",
                 chunk: int = 16, data_dir=None, seed: int = 0, with_embedding: bool = False):
    """One row per pair (t, u), u < t, and per masked layer (`layer`: its weight name, plus "all"
    for all masked weights as one vector). On up to `samples_per_task` samples of task u's `split`
    (a fixed random subset), H_u^(k) and E_u^(k) are the masks and embeddings the model after task k
    gives them with task id u (paper §3.2, Eq. 3); H̄ is a sample-mean |H|. Columns:

    mask_drift: mean |H_u^(t) - H_u^(u)| over samples and weights, in [0, 2] (tanh gate);
    mask_cross: fraction of (sample, weight) entries whose |H| is on the other side of 0.5 than after u;
    overlap: Σ min / Σ max of H̄_u^(t) and H̄_t^(t) (soft Jaccard, [0, 1]), both after task t;
    overlap_binary: Jaccard index of {H̄_u^(t) > 0.5} and {H̄_t^(t) > 0.5};
    weight_change: Σ m |W^(t) - W^(u)| / Σ m |W^(u)| with m = H̄_u^(u) (the shared W where u's masks
    use it); weight_change_unweighted: the same with m = 1;
    effective_change: Σ_b |W^(t) ⊙ H_u,b^(t) - W^(u) ⊙ H_u,b^(u)| / Σ_b |W^(u) ⊙ H_u,b^(u)|;
    embedding_drift: mean_b ||E_b^(t) - E_b^(u)|| / mean_b ||E_b^(u)|| (the same on every layer row);
    embedding_saturation, embedding_spread: the fraction of entries of E_u^(t) above 0.999 in
    magnitude and its std across samples; embedding_saturation_before: the former for E_u^(u);
    task_separability: nearest-centroid task accuracy of E over tasks 0..t after task t
    (dwa_core.diagnosis.embedding; the same on every layer row);
    acc_before, acc_after, acc_drop: acc[u][u], acc[t][u] and their difference, from results.json
    (the `split`'s matrix: acc or valid_acc); final_accuracy and learning_accuracy: the mean of its
    last row and of its diagonal acc[k][k] (the same on every row: the run's, to tell forgetting
    little from learning little).
    All measures are unitless ratios; NaN where a denominator is 0. With `with_embedding`, returns
    (this frame, diagnosis.embedding.embedding_frame of the run: every task k and u <= k).

    Masks are materialised `chunk` samples at a time (an 800x784 layer: 2.5 MB per sample).
    DiagnosisError names the path for a run without snapshots or not of DWA; a results.json that
    cannot be read is a ResultsError; a bad split or sample count a ConfigError."""
    check(split in get_args(Split), "split", "'test' or 'valid'", split)
    check(samples_per_task >= 1 and chunk >= 1, "samples_per_task", "samples and chunk >= 1",
          (samples_per_task, chunk))
    run_dir, device = Path(run_dir), torch.device(device)
    results, bench, models, names = _load_models(run_dir, device, data_dir)
    acc = results.acc if split == "test" else results.valid_acc
    if not acc:
        raise DiagnosisError(f"{run_dir}: results.json has no {split} accuracy matrix")
    n_tasks = len(models)
    weights = [{k: m.state_dict()[k] for k in names} for m in models]
    inputs = _inputs(bench, n_tasks, split, samples_per_task, seed)
    log.info("%s: %d tasks, %d %s samples per task", run_dir, n_tasks, samples_per_task, split)
    sums, n = _accumulate(models, weights, inputs, chunk), [len(x) for x in inputs]
    emb = embedding_frame(models, inputs, run_dir.name)
    rows = []
    for t in range(1, n_tasks):
        for u in range(t):
            common = {"run": run_dir.name, "seed": results.config.get("seed"), "split": split, "t": t, "u": u,
                      "task_name": results.task_names[u], "samples": n[u],
                      "embedding_drift": ratio(*sums[2][t, u].tolist()), "acc_before": acc[u][u],
                      "acc_after": acc[t][u], "acc_drop": acc[u][u] - acc[t][u],
                      "final_accuracy": sum(acc[n_tasks - 1][:n_tasks]) / n_tasks,
                      "learning_accuracy": sum(acc[k][k] for k in range(n_tasks)) / n_tasks,
                      **pair_columns(emb, t, u)}
            parts = {name: _layer_parts(t, u, name, n, sums, weights) for name in names}
            total = {k: tuple(map(sum, zip(*(p[k] for p in parts.values())))) for k in MEASURES}
            for layer, values in [*parts.items(), (ALL_LAYERS, total)]:
                rows.append({**common, "layer": layer, **{k: ratio(*values[k]) for k in MEASURES}})
    import pandas as pd

    return (pd.DataFrame(rows), emb) if with_embedding else pd.DataFrame(rows)


# ---- ablations, summaries and the data file -----------------------------------------------------
def ablation_configs(cfg: ExperimentConfig) -> dict[str, ExperimentConfig]:
    """{label: config} of the ablations of docs/why-dwa-forgets.md on top of a DWA config, each with
    task_snapshots=True, labelled as ablation_labels names them: "default"; the controls without
    the triplet loss (λ1 = 0, Eq. 4), without the plasticity loss (λ2 = 0, Eq. 5) and without any
    auxiliary loss (λ1 = λ2 = λ3 = 0); "freeze_context" (processor frozen after task 0); the original
    code's sparsity term; the other fisher_form; λ2 ×10 and ÷10; the original plasticity form.
    (sparsity_form="binary" is left out: where masks never reach μ its runs equal the default's.)"""
    params = build_params(DWAParams, cfg.approach_params, "approach_params (dwa)")
    lamb = params.lamb_plasticity
    off = {"lamb_triplet": 0.0, "lamb_plasticity": 0.0, "lamb_sparsity": 0.0}
    other_fisher = "batch" if params.fisher_form == "per-sample" else "per-sample"
    changes = {"default": {}, "lamb_triplet=0": {"lamb_triplet": 0.0},
               "lamb_plasticity=0": {"lamb_plasticity": 0.0},
               "lamb_triplet=0,lamb_plasticity=0,lamb_sparsity=0": off,
               "freeze_context": {"freeze_context": True},
               "sparsity_form=original-code": {"sparsity_form": "original-code"},
               f"fisher_form={other_fisher}": {"fisher_form": other_fisher, "fisher_accumulate": False},
               f"lamb_plasticity={lamb / 10:g}": {"lamb_plasticity": lamb / 10},
               f"lamb_plasticity={lamb * 10:g}": {"lamb_plasticity": lamb * 10},
               "plasticity_form=original-code": {"plasticity_form": "original-code"}}
    return {label: cfg.replace(approach_params={**cfg.approach_params, **change}, task_snapshots=True)
            for label, change in changes.items()}


def ablation_labels(approach_params: list[dict]) -> list[str]:
    """A label for each of several DWA runs (their approach_params): the parameters that differ from
    the paper's default (DWAParams) and are not the same in every run, as ablation_configs names them
    ("freeze_context", "lamb_plasticity=1", "a=1,b=2"); "default" for none. Seeds share a label."""
    default = DWAParams()
    params = [build_params(DWAParams, p, "approach_params (dwa)") for p in approach_params]
    differ = lambda p, k: getattr(p, k) != getattr(default, k)  # noqa: E731
    keys = [k for k in DWAParams.__dataclass_fields__
            if any(differ(p, k) for p in params) and len({repr(getattr(p, k)) for p in params}) > 1]
    name = lambda k, v: k if v is True else f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"  # noqa: E731
    return [",".join(name(k, getattr(p, k)) for k in keys if differ(p, k)) or "default" for p in params]


def all_layers(frames: dict):
    """The "all"-layer rows of {label: frame}, concatenated with a `label` column."""
    import pandas as pd

    frame = pd.concat([f.assign(label=label) for label, f in frames.items()], ignore_index=True)
    return frame[frame["layer"] == ALL_LAYERS]


def per_run(frames: dict):
    """{label: diagnose_run frame (one run, or several concatenated, e.g. seeds)} -> one row per
    (label, run): the means over the run's (t, u) pairs of the "all"-layer rows (SUMMARY columns)
    and `forgetting` = the mean acc_drop at the run's last t (= -BWT, metrics.backward_transfer)."""
    frame = all_layers(frames)
    last = frame[frame["t"] == frame.groupby(["label", "run"])["t"].transform("max")]
    keys = ["label", "run"]
    out = frame.groupby(keys, sort=False)[[c for c in SUMMARY if c != "forgetting" and c in frame]].mean()
    out.insert(2, "forgetting", last.groupby(keys, sort=False)["acc_drop"].mean())
    out["pairs"] = frame.groupby(keys, sort=False).size()
    return out.reset_index()


def summarise(frames: dict, intervals: bool = False):
    """One row per label of `frames` (as per_run takes them): the means over its runs of per_run's
    columns (with equal pairs per run, the mean over all its pairs), `pairs` and `runs`. With
    `intervals`, a `<column>_ci` beside each: the half-width of the 95 % Student-t interval over
    the label's runs (metrics.mean_ci; 0 for a single run)."""
    from dwa_core.metrics import mean_ci

    runs = per_run(frames)
    columns = [c for c in runs.columns if c not in ("label", "run", "pairs")]
    grouped = runs.groupby("label", sort=False)
    out = grouped[columns].mean()
    if intervals:
        for c in columns:
            out[f"{c}_ci"] = grouped[c].agg(
                lambda v: mean_ci(v.dropna())[1] if v.notna().any() else float("nan"))
    out["pairs"] = grouped["pairs"].sum()
    out["runs"] = grouped.size()
    return out


TABLE_COLUMNS = ("final_accuracy", "learning_accuracy", "forgetting", "mask_drift", "overlap",
                 "weight_change", "effective_change", "embedding_drift", "embedding_saturation", "embedding_spread",
                 "task_separability")


def summary_markdown(frames: dict, digits: int = 3) -> str:
    """summarise(frames) as a Markdown table (the README's ablation table): TABLE_COLUMNS as
    "mean ± half-width" over each label's runs (the mean alone for one run), and `runs`."""
    from dwa_core.aggregate import to_markdown

    table = summarise(frames, intervals=True)
    out = table[[]].copy()
    for c in TABLE_COLUMNS:
        if c in table:
            out[c] = [mean_ci_text(m, h, digits) for m, h in zip(table[c], table[f"{c}_ci"])]
    out["runs"] = table["runs"]
    return to_markdown(out.reset_index())


def report_markdown(path) -> str:
    """The tables of a diagnosis data file, in Markdown, as the README shows them: the ablation
    table (summary_markdown) and, when the file has the embedding frames, the embedding table
    (diagnosis.embedding.summary_markdown), separated by a blank line."""
    from dwa_core.diagnosis import embedding as diagnosis_embedding

    tables = [summary_markdown(load_diagnosis(path))]
    embedding = load_diagnosis(path, "embedding")
    if embedding:
        tables.append(diagnosis_embedding.summary_markdown(embedding))
    return "\n\n".join(tables)


def distinct_pairs(frames: dict):
    """The "all"-layer rows of `frames` with the copies of a pair dropped: two runs that give the
    same seed, (t, u), accuracies and measures (e.g. ablations that change nothing, whose runs are
    bit-identical) count once."""
    frame = all_layers(frames)
    same = ["seed", "t", "u", "acc_before", "acc_after", *MEASURES]
    return frame.drop_duplicates(subset=[c for c in same if c in frame])


def correlations(frames: dict, method: str = "spearman"):
    """The rank correlation of each measure (MEASURES and the EMBEDDING ones) with acc_drop over the
    distinct (t, u) pairs of every run (distinct_pairs): which measure moves with forgetting. Needs
    several pairs to mean anything."""
    frame = distinct_pairs(frames)
    columns = [c for c in (*MEASURES, *EMBEDDING) if c in frame]
    return frame[columns].corrwith(frame["acc_drop"], method=method).rename(f"{method} ρ with acc_drop")


def _json_rows(frames: dict) -> str:
    """{label: frame} as JSON records with a `label` field, one a line, floats to 6 significant
    digits, NaN as null."""
    import pandas as pd

    frame = pd.concat([f.assign(label=label) for label, f in frames.items()], ignore_index=True)
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    short = lambda v: float(f"{v:.6g}") if isinstance(v, float) else v  # noqa: E731
    return ",\n".join(json.dumps({k: short(v) for k, v in row.items()}) for row in rows)


def save_diagnosis(path, frames: dict, command: str = "", embedding: dict | None = None) -> Path:
    """Write {label: diagnose_run frame} as JSON: {"command", "numerics"
    (dwa_core.numerics.identity()), "rows": records with a `label` field, and, when given,
    "embedding": {label: diagnosis.embedding.embedding_frame} as records alike}."""
    head = f'"command": {json.dumps(command)},\n"numerics": {json.dumps(numerics.identity())}'
    extra = f',\n"embedding": [\n{_json_rows(embedding)}\n]' if embedding else ""
    return atomic_write(path, f'{{{head},\n"rows": [\n{_json_rows(frames)}\n]{extra}}}\n'.encode())


# what every row of a data file has (files written before the embedding measures lack the others)
ROW_COLUMNS = ("label", "run", "t", "u", "layer",
               *(c for c in SUMMARY if c != "forgetting" and c not in EMBEDDING[1:]))


def check_rows(rows, path) -> None:
    """Raise DiagnosisError naming the file and the first row that is not a table of ROW_COLUMNS
    (what summarise and the figures read)."""
    if not isinstance(rows, list) or not rows:
        raise DiagnosisError(f"{path}: not a diagnosis data file (rows: must be a non-empty list)")
    for i, row in enumerate(rows):
        missing = [c for c in ROW_COLUMNS if c not in row] if isinstance(row, dict) else None
        if missing is None or missing:
            problem = "must be a table" if missing is None else f"missing {', '.join(missing)}"
            raise DiagnosisError(f"{path}: not a diagnosis data file (rows[{i}]: {problem})")


def load_diagnosis(path, part: str = "rows") -> dict:
    """{label: frame} of a file written by save_diagnosis: its diagnosis rows (part="rows"), or its
    embedding frames (part="embedding"; {} for a file written without them). DiagnosisError naming
    a bad file."""
    import pandas as pd

    try:
        data = json.loads(Path(path).read_text())
        rows = data["rows"] if part == "rows" else data.get(part, [])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DiagnosisError(f"{path}: not a diagnosis data file ({type(err).__name__}: {err})") from err
    if part == "rows":
        check_rows(rows, path)
    elif not rows:
        return {}
    frame = pd.DataFrame(rows)
    return {label: f.drop(columns="label").reset_index(drop=True)
            for label, f in frame.groupby("label", sort=False)}


def checked_config(run_dir) -> dict:
    """The config of a DWA run with task snapshots; DiagnosisError naming the path otherwise."""
    snapshot_files(run_dir)
    config = load_run(run_dir).config
    if config.get("approach") != "dwa":
        raise DiagnosisError(f"{run_dir}: a {config.get('approach')!r} run; "
                             f"the diagnosis needs a DWA network")
    return config


def _diagnose_one(args: tuple):
    """diagnose_run(run_dir, samples, device, split=, data_dir=, with_embedding=True) on one torch
    thread: what a worker process of diagnose_runs computes."""
    run_dir, samples_per_task, device, split, data_dir, threads = args
    if threads:
        torch.set_num_threads(threads)
    return diagnose_run(run_dir, samples_per_task, device, split=split, data_dir=data_dir,
                        with_embedding=True)


def diagnose_runs(run_dirs, labels=None, samples_per_task: int = 200, device="cpu", *,
                  split: Split = "test", data_dir=None, workers: int = 1) -> tuple[dict, dict]:
    """({label: diagnose_run frame}, {label: its runs' embedding frames}) of several runs, every run
    checked (checked_config) before any is measured; a label given to several runs pools their rows
    (e.g. seeds). labels: one per run, default ablation_labels of the runs' parameters. workers > 1
    measures that many runs at once in worker processes (one torch thread each); the result is the
    same as with one."""
    import pandas as pd

    configs = [checked_config(d) for d in run_dirs]
    labels = labels or ablation_labels([c.get("approach_params", {}) for c in configs])
    check(workers >= 1, "workers", "an integer >= 1", workers)
    jobs = [(d, samples_per_task, device, split, data_dir, 1 if workers > 1 else None) for d in run_dirs]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            measured = list(pool.map(_diagnose_one, jobs))
    else:
        measured = [_diagnose_one(job) for job in jobs]
    frames: dict = {}
    embedding: dict = {}
    for label, (frame, emb) in zip(labels, measured):
        frames[label] = pd.concat([frames.get(label), frame], ignore_index=True)
        embedding[label] = pd.concat([embedding.get(label), emb], ignore_index=True)
    return frames, embedding
