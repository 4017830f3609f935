"""Why DWA forgets (dwa_core.diagnosis): the measures on tensors done by hand, on snapshots edited
by known amounts, on tiny real DWA runs, and the errors for runs it cannot read."""

import json
import shutil

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from dwa_core import cli, diagnosis, plots
from dwa_core.config import ConfigError, ExperimentConfig, TrainConfig
from dwa_core.experiment import run_experiment, snapshot_path
from dwa_core.functional.drift import (
    binary_overlap_parts,
    mask_pair_sums,
    relative_drift,
    soft_overlap,
    weighted_change,
)
from dwa_core.runs import run_dir

matplotlib.use("Agg")  # the tests only draw to files


# ---- the measures, by hand ----------------------------------------------------------------------
def test_overlap_by_hand():
    a, b = torch.tensor([1.0, 0.0, 0.5]), torch.tensor([0.5, 0.5, 0.5])
    assert soft_overlap(a, b) == pytest.approx((0.5 + 0 + 0.5) / (1 + 0.5 + 0.5))
    assert soft_overlap(a, a) == 1.0 and soft_overlap(a, torch.zeros(3)) == 0.0
    assert np.isnan(soft_overlap(torch.zeros(3), torch.zeros(3)))  # nothing used by either
    a, b = torch.tensor([0.9, 0.6, 0.2, 0.0]), torch.tensor([0.7, 0.1, 0.8, 0.0])
    assert binary_overlap_parts(a, b) == (1.0, 3.0)  # {0, 1} and {0, 2}: 1 shared of 3


def test_weighted_change_by_hand():
    before, after = torch.tensor([1.0, -2.0, 4.0]), torch.tensor([1.5, -2.0, 3.0])
    m = torch.tensor([1.0, 0.0, 0.5])
    assert weighted_change(before, after, m) == pytest.approx((0.5 + 0.5 * 1.0) / (1.0 + 0.5 * 4.0))
    assert weighted_change(before, after) == pytest.approx(1.5 / 7.0)
    assert weighted_change(before, before, m) == 0.0


def test_relative_drift_by_hand():
    ref = torch.tensor([[3.0, 4.0], [6.0, 8.0]])  # norms 5 and 10
    new = ref + torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    assert relative_drift(ref, new) == pytest.approx(0.5 / 7.5)


def test_mask_pair_sums_by_hand():
    h_ref, h_new = torch.tensor([[[0.6, -0.2]]]), torch.tensor([[[0.4, -0.7]]])  # (B=1, out=1, in=2)
    w_ref, w_new = torch.tensor([[2.0, 1.0]]), torch.tensor([[2.0, 3.0]])
    # effective weights: ref (1.2, -0.2), new (0.8, -2.1); both entries cross |H| = 0.5
    expected = [0.2 + 0.5, 2.0, 2.0, 0.4 + 1.9, 1.2 + 0.2]
    torch.testing.assert_close(mask_pair_sums(h_ref, h_new, w_ref, w_new), torch.tensor(expected))


# ---- tiny real runs -----------------------------------------------------------------------------
def _cfg(tmp, **params):
    return ExperimentConfig(benchmark="split-digits", approach="dwa", device="cpu", output_dir=str(tmp),
                            train=TrainConfig(epochs=2, batch_size=16),
                            approach_params={"curriculum": "linear:2:0.5", "anchor_samples": 16, **params},
                            benchmark_params={"per_class": 8}, network_params={"hidden": 32},
                            max_tasks=3, task_snapshots=True)


def _run(cfg):
    run_experiment(cfg)
    return run_dir(cfg)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 3-task DWA run with task snapshots (seconds)."""
    return _run(_cfg(tmp_path_factory.mktemp("runs")))


@pytest.fixture
def copy_of(tmp_path, tiny_run):
    """A copy of the tiny run whose task snapshots the test may edit: edit(t, state) writes one."""
    run = tmp_path / tiny_run.name
    shutil.copytree(tiny_run, run)
    states = [torch.load(snapshot_path(run, t)) for t in range(3)]
    edit = lambda t, state: torch.save(state, snapshot_path(run, t))  # noqa: E731
    return run, states, edit


def test_real_run_gives_finite_measures_in_range(tiny_run):
    frame = diagnosis.diagnose_run(tiny_run, samples_per_task=20, chunk=8)
    results = json.loads((tiny_run / "results.json").read_text())
    pairs = [(1, 0), (2, 0), (2, 1)]
    assert list(zip(frame.t, frame.u))[::3] == pairs  # fc1, fc2, all per pair
    assert frame.layer.tolist() == ["fc1.weight", "fc2.weight", "all"] * 3
    measures = frame[list(diagnosis.MEASURES) + ["embedding_drift"]]
    assert np.isfinite(measures.to_numpy()).all() and (measures >= 0).all().all()
    assert frame.overlap.le(1).all() and frame.mask_cross.le(1).all() and frame.mask_drift.le(2).all()
    acc = results["acc"]
    drops = [acc[u][u] - acc[t][u] for t, u in pairs for _ in range(3)]  # the same on the 3 rows of a pair
    assert frame.acc_drop.tolist() == pytest.approx(drops)
    assert (frame.samples == 20).all() and (frame.split == "test").all()
    assert frame.final_accuracy.iloc[0] == pytest.approx(np.mean(acc[2]))
    assert frame.learning_accuracy.iloc[0] == pytest.approx((acc[0][0] + acc[1][1] + acc[2][2]) / 3)
    valid = diagnosis.diagnose_run(tiny_run, samples_per_task=5, split="valid")
    assert valid.acc_after.tolist()[2] == pytest.approx(results["valid_acc"][1][0])


def test_identical_snapshots_give_zero_drift(copy_of):
    run, states, edit = copy_of
    edit(1, states[0])
    edit(2, states[0])
    frame = diagnosis.diagnose_run(run, samples_per_task=1000)
    for column in ("mask_drift", "mask_cross", "weight_change", "weight_change_unweighted",
                   "effective_change", "embedding_drift"):
        assert (frame[column] == 0).all(), column


def _masks(run, state, x, u):
    """{weight name: H (B, out, in)} and E of the model of `run` with `state`, without diagnosis."""
    _, _, model = diagnosis.rebuild_run(run, torch.device("cpu"), None)
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        model(x, u)
    return {k: m.materialise() for k, m in model.state.masks.items()}, model.state.embedding


def test_known_weight_change_weighted_by_the_masks(copy_of):
    run, states, edit = copy_of
    from dwa_core import data

    bench = data.load_benchmark(_cfg(run.parent), torch.device("cpu"))
    x = bench.tasks[0].test.x  # every test sample of task 0 (samples_per_task=1000 below)
    masks, _ = _masks(run, states[0], x, 0)
    m1, m2 = masks["fc1.weight"].abs().mean(0), masks["fc2.weight"].abs().mean(0)  # (32, 64), (32, 32)
    delta, entries = 0.3, (torch.tensor([0, 3, 7, 31]), torch.tensor([5, 5, 60, 0]))
    moved = {k: v.clone() for k, v in states[0].items()}
    moved["fc1.weight"][entries] += delta
    edit(1, moved)
    w1, w2 = states[0]["fc1.weight"], states[0]["fc2.weight"]
    frame = diagnosis.diagnose_run(run, samples_per_task=1000).query("t == 1 and u == 0").set_index("layer")
    expected = delta * m1[entries].sum() / (m1 * w1.abs()).sum()
    assert frame.loc["fc1.weight", "weight_change"] == pytest.approx(float(expected), rel=1e-5)
    unweighted = 4 * delta / float(w1.abs().sum())
    assert frame.loc["fc1.weight", "weight_change_unweighted"] == pytest.approx(unweighted, rel=1e-5)
    assert frame.loc["fc2.weight", "weight_change"] == 0
    both = delta * m1[entries].sum() / ((m1 * w1.abs()).sum() + (m2 * w2.abs()).sum())
    assert frame.loc["all", "weight_change"] == pytest.approx(float(both), rel=1e-5)
    # the masks do not depend on W: they did not move
    assert frame.loc["all", "mask_drift"] == 0 and frame.loc["all", "embedding_drift"] == 0


def test_perturbed_processor_and_generator(copy_of):
    run, states, edit = copy_of
    from dwa_core import data

    bench = data.load_benchmark(_cfg(run.parent), torch.device("cpu"))
    x = bench.tasks[0].test.x
    moved = {k: v.clone() for k, v in states[0].items()}
    last = max(k for k in moved if k.startswith("processor.") and k.endswith(".bias"))
    moved[last] += 0.5  # every embedding moves: E = tanh(z + 0.5)
    moved["generators.fc2.g1.bias"] -= 0.2
    moved["fc2.weight"][2, :] *= 1.5
    edit(1, moved)
    (h0, e0), (h1, e1) = _masks(run, states[0], x, 0), _masks(run, moved, x, 0)
    frame = diagnosis.diagnose_run(run, samples_per_task=1000, chunk=5)
    row = frame.query("t == 1 and u == 0").set_index("layer")
    drift = (e1 - e0).norm(dim=1).mean() / e0.norm(dim=1).mean()
    assert row.loc["all", "embedding_drift"] == pytest.approx(float(drift), rel=1e-5)
    assert row.loc["all", "embedding_drift"] > 0
    for name in ("fc1.weight", "fc2.weight"):
        drift = float((h1[name] - h0[name]).abs().mean())
        assert row.loc[name, "mask_drift"] == pytest.approx(drift, rel=1e-5) and drift > 0
        crossed = (h1[name].abs() > 0.5) != (h0[name].abs() > 0.5)
        assert row.loc[name, "mask_cross"] == pytest.approx(float(crossed.float().mean()), abs=1e-7)
    n1, n2 = h0["fc1.weight"].numel(), h0["fc2.weight"].numel()
    mixed = (row.loc["fc1.weight", "mask_drift"] * n1 + row.loc["fc2.weight", "mask_drift"] * n2) / (n1 + n2)
    assert row.loc["all", "mask_drift"] == pytest.approx(mixed)  # all: every entry of every layer
    # W weighted by task 0's masks before the change (after task 0), not after it
    m, w = h0["fc2.weight"].abs().mean(0), states[0]["fc2.weight"]
    expected = 0.5 * (m[2] * w[2].abs()).sum() / (m * w.abs()).sum()
    assert row.loc["fc2.weight", "weight_change"] == pytest.approx(float(expected), rel=1e-5)
    assert row.loc["fc1.weight", "weight_change"] == 0
    # overlap after task 1: task 0's sample-mean |H| against task 1's, Σ min / Σ max
    task1, _ = _masks(run, moved, bench.tasks[1].test.x, 1)
    a, b = h1["fc1.weight"].abs().mean(0), task1["fc1.weight"].abs().mean(0)
    overlap = float(torch.minimum(a, b).sum() / torch.maximum(a, b).sum())
    assert row.loc["fc1.weight", "overlap"] == pytest.approx(overlap, rel=1e-5)


def test_freeze_context_keeps_the_embeddings(tmp_path):
    """The ablation's claim, measured: with the processor frozen after task 0, the embeddings of
    earlier tasks do not move at all, while their masks still can."""
    frame = diagnosis.diagnose_run(_run(_cfg(tmp_path, freeze_context=True)), samples_per_task=20)
    assert (frame.embedding_drift == 0).all()
    assert (frame.weight_change_unweighted > 0).all()


# ---- summaries, the data file, the configs ------------------------------------------------------
def _frame(run, drops, drift):
    """A hand-made diagnosis frame of a 3-task run: pairs (1,0), (2,0), (2,1), "all" rows only."""
    pairs = [(1, 0), (2, 0), (2, 1)]
    return pd.DataFrame({"run": run, "t": [t for t, _ in pairs], "u": [u for _, u in pairs], "layer": "all",
                         "acc_drop": drops, "mask_drift": drift, "final_accuracy": 0.8,
                         "learning_accuracy": 0.9,
                         **{k: 0.5 for k in diagnosis.MEASURES if k != "mask_drift"},
                         "embedding_drift": [0.0, np.nan, 1.0]})


def test_summarise_by_hand():
    seeds = [_frame("r1", [0.0, 0.0, 0.0], [0.1] * 3), _frame("r2", [0.2, 0.4, 0.0], [0.1] * 3)]
    frames = {"a": _frame("r0", [0.1, 0.3, 0.2], [0.0, 0.6, 0.3]), "b": pd.concat(seeds)}
    out = diagnosis.summarise(frames)
    assert list(out.index) == ["a", "b"]
    assert out.loc["a", "forgetting"] == pytest.approx((0.3 + 0.2) / 2)  # at the last t = 2
    assert out.loc["b", "forgetting"] == pytest.approx((0 + 0 + 0.4 + 0) / 4)
    assert out.loc["a", "acc_drop"] == pytest.approx(0.2) and out.loc["a", "mask_drift"] == pytest.approx(0.3)
    assert out.loc["a", "embedding_drift"] == pytest.approx(0.5)  # NaN left out
    assert out.loc["b", "pairs"] == 6 and out.loc["b", "runs"] == 2
    assert list(out.columns[:3]) == ["final_accuracy", "learning_accuracy", "forgetting"]


def test_summary_intervals_over_runs_by_hand():
    # forgetting per run: r1 0.0, r2 (0.4 + 0) / 2 = 0.2 -> mean 0.1, half-width t(0.975, 1) * s / sqrt(2)
    seeds = [_frame("r1", [0.0, 0.0, 0.0], [0.1] * 3), _frame("r2", [0.2, 0.4, 0.0], [0.1] * 3)]
    out = diagnosis.summarise({"b": pd.concat(seeds)}, intervals=True)
    s = np.std([0.0, 0.2], ddof=1)
    assert out.loc["b", "forgetting"] == pytest.approx(0.1)
    assert out.loc["b", "forgetting_ci"] == pytest.approx(12.7062047 * s / np.sqrt(2))
    assert out.loc["b", "mask_drift_ci"] == pytest.approx(0.0)  # the same in both runs
    table = diagnosis.summary_markdown({"b": pd.concat(seeds)})
    assert f"0.100 ± {12.7062047 * s / np.sqrt(2):.3f}" in table


def test_correlations_count_identical_runs_once():
    run = _frame("r0", [0.1, 0.3, 0.2], [0.0, 0.6, 0.3])
    copy = run.assign(run="r1")  # an ablation that changed nothing: the same numbers
    assert len(diagnosis.distinct_pairs({"a": run, "b": copy})) == 3
    other = _frame("r2", [0.0, 0.5, 0.1], [0.2, 0.1, 0.4])
    assert len(diagnosis.distinct_pairs({"a": run, "b": copy, "c": other})) == 6
    once = diagnosis.correlations({"a": run, "c": other})
    pd.testing.assert_series_equal(diagnosis.correlations({"a": run, "b": copy, "c": other}), once)


def test_data_file_round_trip(tmp_path):
    frames = {"default": _frame("r0", [0.1, 0.3, 0.2], [0.0, 0.6, 0.3]),
              "other": _frame("r1", [0.0] * 3, [0.1] * 3)}
    path = diagnosis.save_diagnosis(tmp_path / "sub" / "d.json", frames, "python -m dwa_core.diagnosis x")
    assert "NaN" not in path.read_text()  # standard JSON: NaN written as null
    back = diagnosis.load_diagnosis(path)
    assert list(back) == ["default", "other"]
    pd.testing.assert_frame_equal(back["default"], frames["default"], check_dtype=False)
    with pytest.raises(diagnosis.DiagnosisError, match="not a diagnosis data file"):
        diagnosis.load_diagnosis(tmp_path / "missing.json")


def test_ablation_table_from_a_data_file(tmp_path, capsys):
    frames = {"default": _frame("r0", [0.1, 0.3, 0.2], [0.0, 0.6, 0.3]),
              "other": _frame("r1", [0.0] * 3, [0.1] * 3)}
    path = diagnosis.save_diagnosis(tmp_path / "d.json", frames)
    assert cli.main(["diagnosis", "--from-data", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| label | final_accuracy | learning_accuracy | forgetting | mask_drift")
    assert lines[2].startswith("| default | 0.800 | 0.900 | 0.250 | 0.300 |")  # forgetting (0.3 + 0.2) / 2
    assert cli.main(["diagnosis"]) == 2 and "RUN_DIRs" in capsys.readouterr().err


def test_ablation_configs(tmp_path):
    variants = diagnosis.ablation_configs(_cfg(tmp_path).replace(task_snapshots=False))
    assert list(variants) == ["default", "lamb_triplet=0", "lamb_plasticity=0",
                              "lamb_triplet=0,lamb_plasticity=0,lamb_sparsity=0", "freeze_context",
                              "sparsity_form=original-code", "fisher_form=batch", "lamb_plasticity=0.01",
                              "lamb_plasticity=1", "plasticity_form=original-code"]
    off = variants["lamb_triplet=0,lamb_plasticity=0,lamb_sparsity=0"].approach_params
    assert (off["lamb_triplet"], off["lamb_plasticity"], off["lamb_sparsity"]) == (0, 0, 0)
    assert all(c.task_snapshots for c in variants.values())
    assert variants["lamb_plasticity=0.01"].approach_params["lamb_plasticity"] == pytest.approx(0.01)
    assert variants["freeze_context"].approach_params["anchor_samples"] == 16  # the base's params kept
    assert len({c.key() for c in variants.values()}) == len(variants)  # each its own run folder
    # the CLI's default labels name the same runs the same way, whatever parameters they share
    assert diagnosis.ablation_labels([c.approach_params for c in variants.values()]) == list(variants)
    runs = [{}, {"lamb_triplet": 5.0, "sparsity_mu": 0.5}, {"freeze_context": False}]
    assert diagnosis.ablation_labels(runs) == ["default", "lamb_triplet=5,sparsity_mu=0.5", "default"]


# ---- errors -------------------------------------------------------------------------------------
def test_missing_folder_and_snapshots(tmp_path, copy_of):
    with pytest.raises(diagnosis.DiagnosisError, match=f"{tmp_path / 'nope'}: no such run folder"):
        diagnosis.load_snapshots(tmp_path / "nope")
    run, _, _ = copy_of
    snapshot_path(run, 1).unlink()
    with pytest.raises(diagnosis.DiagnosisError, match="task-1.pt is missing"):
        diagnosis.diagnose_run(run)
    for t in (0, 2):
        snapshot_path(run, t).unlink()
    with pytest.raises(diagnosis.DiagnosisError, match="no task snapshots .*task_snapshots=True"):
        diagnosis.diagnose_run(run)
    with pytest.raises(ConfigError, match="split"):
        diagnosis.diagnose_run(run, split="train")


def test_cli_writes_the_data_file_and_reports_bad_paths(tmp_path, tiny_run, capsys):
    out = tmp_path / "d.json"
    assert cli.main(["diagnosis", str(tiny_run), str(tiny_run), "--label", "a", "--label", "a",
                     "--output", str(out), "--samples", "10"]) == 0
    frames = diagnosis.load_diagnosis(out)
    assert list(frames) == ["a"] and len(frames["a"]) == 2 * 9  # two runs pooled under one label
    assert "written to" in capsys.readouterr().out
    assert cli.main(["diagnosis", str(tiny_run), "--output", str(out), "--samples", "5"]) == 0
    assert list(diagnosis.load_diagnosis(out)) == ["default"]  # labels from the runs' parameters
    assert cli.main(["diagnosis", str(tmp_path / "nope"), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'nope'}: no such run folder\n"
    assert cli.main(["diagnosis", str(tiny_run), "--label", "a", "--label", "b", "--output", str(out)]) == 2
    assert "one per RUN_DIR" in capsys.readouterr().err


def test_plots_draw_every_measure(tiny_run, tmp_path):
    frame = diagnosis.diagnose_run(tiny_run, samples_per_task=10)
    frames = {"default": frame, "other": frame}
    fig = plots.plot_dwa_diagnosis(pd.concat([f.assign(label=k) for k, f in frames.items()]))
    panels = [ax for ax in fig.axes if ax.collections]
    assert len(panels) == len(plots.DIAGNOSIS_MEASURES)
    assert all(len(ax.collections) == 2 for ax in panels)  # one scatter per label
    assert all(len(c.get_offsets()) == 3 for c in panels[0].collections)  # the 3 pairs
    # the second run is the first one again: its points would hide, the legend says so
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["default", "other (identical to default)"]
    bars = plots.plot_ablation_bars(diagnosis.summarise(frames))
    assert len([ax for ax in bars.axes if ax.patches]) == len(plots.ABLATION_COLUMNS)
    plots.save_figure(fig, tmp_path / "f", {}, "test")


def test_a_run_that_is_not_dwa(tmp_path, capsys):
    cfg = ExperimentConfig(benchmark="split-digits", approach="sgd", device="cpu", output_dir=str(tmp_path),
                           train=TrainConfig(epochs=1), benchmark_params={"per_class": 8},
                           network_params={"hidden": 16}, max_tasks=2, task_snapshots=True)
    run = _run(cfg)
    message = f"{run}: a 'sgd' run; the diagnosis needs a DWA network"
    with pytest.raises(diagnosis.DiagnosisError, match=message):
        diagnosis.diagnose_run(run)
    assert cli.main(["diagnosis", str(run), "--output", str(tmp_path / "d.json")]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


def test_fig7_from_a_finished_run(tiny_run, tmp_path, capsys):
    """Paper Fig. 7 from a run's last snapshot: one masks figure per task and the embedding PCA,
    with sidecars that record the run and the numerics; nothing is trained."""
    import json

    from dwa_core import numerics

    assert cli.main(["figures", "--fig7-run", str(tiny_run), "--out", str(tmp_path)]) == 0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len([p for p in pngs if p.startswith("fig7_masks_split-digits_")]) == 3  # max_tasks=3
    assert "fig7_embedding_pca_split-digits.png" in pngs
    side = json.loads((tmp_path / "fig7_embedding_pca_split-digits.json").read_text())
    assert side["config"]["run"] == tiny_run.name and side["numerics"] == numerics.identity()
    assert "--fig7-run" in side["command"] and capsys.readouterr().out.count("written") == 4
