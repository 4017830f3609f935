"""Every notebook runs under papermill in the smoke profile; committed notebooks have no outputs."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dwa_core import fidelity, figures

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "dwa-core-test"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert {"profile", "seeds", "device", "data_dir", "metrics_path"} <= {
        line.split("=")[0].strip() for line in code[0].source.splitlines() if "=" in line}


def test_generator_is_in_sync(tmp_path):
    """scripts/make_notebooks.py reproduces the committed notebooks exactly."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_notebooks

    for name, (title, intro, cells) in make_notebooks.NOTEBOOKS.items():
        made = make_notebooks.notebook(name, title, intro, cells)
        committed = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        assert [c.source for c in made.cells] == [c.source for c in committed.cells], name


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Run every notebook once with a kernelspec of the running interpreter; {stem: metrics}."""
    import papermill as pm

    tmp = tmp_path_factory.mktemp("nb")
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(tmp / "jp"), "--name",
                    KERNEL], check=True, capture_output=True)
    os.environ["JUPYTER_PATH"] = str(tmp / "jp" / "share" / "jupyter")
    os.environ["PYTHONPATH"] = f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    out = {}
    for path in NOTEBOOKS:
        metrics = tmp / f"{path.stem}.json"
        pm.execute_notebook(str(path), str(tmp / path.name), kernel_name=KERNEL, cwd=str(ROOT / "notebooks"),
                            parameters={"profile": "smoke", "seeds": [0], "metrics_path": str(metrics),
                                        "figures_dir": str(tmp / "figures")}, progress_bar=False)
        out[path.stem] = json.loads(metrics.read_text())
        ran = nbformat.read(tmp / path.name, as_version=4)
        out[path.stem]["_png_outputs"] = sum("image/png" in o.get("data", {}) for c in ran.cells
                                             if c.cell_type == "code" for o in c.outputs)
    return out


def test_every_notebook_records_metrics(executed):
    assert set(executed) == {p.stem for p in NOTEBOOKS}
    assert all(m["profile"] == "smoke" for m in executed.values())


# Margins below are for the smoke profile of dwa_core/figures.py, seed 0 (measured: forgetting sgd
# 0.114, hat 0.000, joint 0.004; average accuracy joint 0.994, random 0.495).
FORGETTING_MARGIN = 0.05


def test_figures_are_shown(executed):
    """Figures appear in the executed notebooks (dwa_core.plots uses Agg: they are displayed as PNG)."""
    assert executed["03_hat_step_by_step"]["_png_outputs"] >= 7
    assert executed["05_dwa_step_by_step"]["_png_outputs"] >= 5
    assert executed["02_catastrophic_forgetting"]["_png_outputs"] >= 4


def test_forgetting_notebook(executed):
    m = executed["02_catastrophic_forgetting"]["metrics"]
    assert m["joint"]["average_accuracy"] > m["random"]["average_accuracy"] + 0.4
    assert m["joint"]["average_accuracy"] > 0.9
    assert m["random"]["rho_mean"] == pytest.approx(-1.0, abs=0.35)
    assert m["joint"]["rho_mean"] == pytest.approx(0.0, abs=1e-9)
    # SGD really forgets in the smoke profile; joint (all data so far) does not
    assert m["sgd"]["forgetting"] >= m["joint"]["forgetting"] + FORGETTING_MARGIN
    assert m["sgd"]["backward_transfer"] <= -FORGETTING_MARGIN
    assert m["sgd"]["rho_mean"] < m["joint"]["rho_mean"]


def test_quickstart_learns(executed):
    assert executed["01_quickstart"]["final_accuracy"] > 0.7


def test_hat_forgets_less_than_sgd(executed):
    m = executed["03_hat_step_by_step"]
    assert m["forgetting"]["sgd"] - m["forgetting"]["hat"] >= FORGETTING_MARGIN
    assert m["forgetting"]["hat"] <= 0.01 and m["final_accuracy"]["hat"] > m["final_accuracy"]["sgd"]


def test_hat_walkthrough(executed):
    m = executed["03_hat_step_by_step"]
    gate = m["gate_at_e_0.05"]  # sigmoid(0.05 s): smooth at s = 1, a step at s_max
    assert gate["1"] == pytest.approx(1 / (1 + math.exp(-0.05)))
    assert gate["400"] > 0.999 and gate["1"] < gate["10"] < gate["50"] < gate["400"]
    assert m["anneal"]["s_first"] == pytest.approx(1 / 400)
    assert m["anneal"]["s_first"] < m["anneal"]["s_last"] < 400
    assert m["compensation"]["s=1,e=0"] == pytest.approx(400.0)  # s_max / s at e = 0
    assert m["compensation"]["s=400,e=0"] == pytest.approx(1.0)
    usage = list(m["usage"].values())
    for prev, cur in zip(usage, usage[1:]):  # the cumulative mask only grows
        assert all(cur["cumulative_used"][k] >= prev["cumulative_used"][k] for k in cur["used"])
    assert all(0 < u < 1 for r in usage for u in r["used"].values())  # each task uses some units
    cond = list(m["conditioning"].values())
    blocked = [c["blocked_all"] for c in cond]
    assert blocked == sorted(blocked) and blocked[0] > 0  # conditioning protects more after every task
    assert all(c["blocked_all"] == pytest.approx(c["predicted"], abs=1e-6) for c in cond)
    assert 0.05 < m["blocked_last"] < 1  # a real batch of the last task: a share of its gradient is stopped
    assert all(0 <= r < 1 for r in m["regularizer"])
    final = m["walkthrough_acc"][-1]
    assert min(final) > 0.8  # fit_hat's run keeps every task


def test_dwa_walkthrough(executed):
    m = executed["05_dwa_step_by_step"]
    assert m["embedding_shape"] == [8, 100]
    assert m["mask_shapes"] == {"fc1.weight": [8, 100, 64], "fc2.weight": [8, 100, 100]}
    assert min(m["zeta_sample"]) == 0.0 and max(m["zeta_sample"]) == 1.0  # min-max normalised
    for theta in m["schedules"].values():
        assert theta[0] == pytest.approx(0.2) and theta[-1] == pytest.approx(1.0) and theta == sorted(theta)
    anchors = m["anchors"]
    assert anchors["cos_positive_negative"] == pytest.approx(0.0, abs=1e-5)
    assert anchors["norm_negative"] == pytest.approx(1.0, abs=1e-5)
    terms = m["loss_terms"]
    assert all(terms[k] is not None and terms[k] >= 0 for k in ("ce", "embedding", "plasticity", "sparsity"))
    assert terms["approach_loss"] == pytest.approx(terms["total"], rel=1e-5)
    assert terms["total"] >= terms["ce"]
    assert 0 < m["final_accuracy"] <= 1 and "valid_loss" in m["history_keys"]


def test_paper_figures_and_related_work(executed):
    summary = executed["06_paper_fig5_fig6"]["summary"]
    assert "sgd" in summary and all(0 <= row["final_accuracy"] <= 1 for row in summary.values())
    # Fig. 6's forgetting ratio: HAT near joint level (0), SGD clearly below it
    assert summary["hat"]["rho_mean"] - summary["sgd"]["rho_mean"] >= 0.03
    assert summary["hat"]["percent_forgotten"] + 5 <= summary["sgd"]["percent_forgotten"]
    table = executed["09_related_work_table"]["summary"]
    assert {"sgd", "ewc"} <= set(table)
    assert all(row["rho_ci95"] >= 0 for row in table.values())


def test_hat_compression_uses_fewer_units_with_larger_c(executed):
    m = executed["08_hat_compression"]
    if not m["available"]:
        pytest.skip("hat is not registered yet")
    assert m["compression"]["2.0"]["active_units"] <= m["compression"]["0.1"]["active_units"] + 1e-9


def test_fidelity_switch_changes_training(executed):
    m = executed["10_paper_vs_original_code"]
    assert {r["switch"] for r in m["switches"]} == {s.name for s in fidelity.SWITCHES}
    dwa = m["dwa_switches"]  # default, each DWA switch alone, all together
    flipped = {s.name for s in fidelity.of("dwa") if s.owner != "train"}
    assert set(dwa) == {"default", "all of the above"} | flipped
    assert all(r["finite"] and 0.0 <= r["final_accuracy"] <= 1.0 for r in dwa.values())
    # original-code never decays the lr, so it never stops early: all epochs of every task
    epochs = figures.PROFILES["smoke"]["train"]["epochs"]
    assert all(n == epochs for n in m["epochs_per_task"]["original-code"])
    assert sum(m["epochs_per_task"]["paper"]) < sum(m["epochs_per_task"]["original-code"])


def test_explorer_renders_without_training(executed):
    m = executed["11_explorer"]
    assert "training disabled" in m["status"] and m["n_controls"] >= 0
