"""Every notebook runs under papermill as it is committed; committed notebooks carry no outputs,
start with a `parameters` cell, check those parameters in the next cell, and show figures through
Jupyter's normal inline display."""

import base64
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import get_kernel_dict

import dwa_core
from dwa_core import fidelity, figures

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "dwa-core-test"
# the kernelspec JupyterLab writes into a notebook it saves (ipykernel's own)
KERNELSPEC = {"display_name": get_kernel_dict()["display_name"], "language": "python", "name": "python3"}
PNG = b"\x89PNG\r\n\x1a\n"


def committed(path: Path) -> nbformat.NotebookNode:
    """The notebook as git will commit it (the index, after the nbstripout filter), or the file
    itself outside a git checkout."""
    rel = path.relative_to(ROOT).as_posix()
    got = subprocess.run(["git", "show", f":{rel}"], cwd=ROOT, capture_output=True, text=True)
    text = got.stdout if got.returncode == 0 else path.read_text()
    return nbformat.reads(text, as_version=4)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = committed(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert {"profile", "seeds", "device", "data_dir", "metrics_path"} <= {
        line.split("=")[0].strip() for line in code[0].source.splitlines() if "=" in line}
    assert "notebook.setup(" in code[1].source  # the parameters are checked right after
    # what JupyterLab writes on save: the kernelspec ipykernel installs; language_info is stripped
    assert nb.metadata == {"kernelspec": KERNELSPEC}
    text = "\n".join(c.source for c in code)
    # figures through the normal inline display; outputs outside the sources
    assert "display_formatter" not in text and "matplotlib.use" not in text and "sys.path" not in text
    assert "../figures" not in text and '"metrics.json"' not in text


def test_notebooks_are_filtered_by_nbstripout():
    """.gitattributes sends every notebook through nbstripout (configured by scripts/setup.sh)."""
    attrs = (ROOT / ".gitattributes").read_text()
    assert "*.ipynb filter=nbstripout" in attrs
    assert "notebooks/_out/" in (ROOT / ".gitignore").read_text()


def test_this_checkout_is_imported():
    """Each checkout imports its own dwa_core (scripts/setup.sh's per-checkout .venv)."""
    assert Path(dwa_core.__file__).resolve().parent == ROOT / "dwa_core"


def test_committed_figures_are_regenerated_ones():
    """figures/ holds only what `python -m dwa_core.figures` or a benchmark script writes (each PNG has
    its sidecar, naming the command)."""
    for png in (ROOT / "figures").glob("*.png"):
        sidecar = json.loads(png.with_suffix(".json").read_text())
        assert sidecar["command"].startswith(("python -m dwa_core.figures", "python benchmarks/")), png.name
    assert not (ROOT / "figures" / "notebooks").exists()


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernelspec of the running interpreter, for papermill."""
    tmp = tmp_path_factory.mktemp("kernel")
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(tmp / "jp"), "--name",
                    KERNEL], check=True, capture_output=True)
    os.environ["JUPYTER_PATH"] = str(tmp / "jp" / "share" / "jupyter")
    return KERNEL


@pytest.mark.parametrize("name, value, message", [
    ("profile", "bogus", "ParameterError: profile: must be one of 'paper', 'smoke'; got 'bogus'"),
    ("seeds", 3, "ParameterError: seeds: must be a non-empty list of integers >= 0"),
    ("seed", 3, "ParameterError: unknown parameter(s) seed (papermill -p); this notebook's: profile, seeds,"),
])
def test_bad_parameter_stops_in_one_line(kernel, tmp_path, name, value, message):
    """`papermill -p profile bogus` / `-p seeds 3` stop in the cell after the parameters, with one
    line that says what is allowed (no traceback)."""
    import papermill as pm

    out = tmp_path / "out.ipynb"
    with pytest.raises(pm.PapermillExecutionError):
        pm.execute_notebook(str(ROOT / "notebooks" / "01_quickstart.ipynb"), str(out), kernel_name=kernel,
                            cwd=str(ROOT / "notebooks"), parameters={name: value}, progress_bar=False)
    ran = nbformat.read(out, as_version=4)
    failed = [c for c in ran.cells if c.cell_type == "code"
              and any(o.output_type == "error" for o in c.outputs)]
    assert len(failed) == 1 and "notebook.setup(" in failed[0].source  # the cell after the parameters
    (error,) = [o for o in failed[0].outputs if o.output_type == "error"]
    assert len(error.traceback) == 1 and error.traceback[0].startswith(message)


# The notebooks run in two lanes at once (each notebook a papermill process; a lane runs its
# notebooks in order). The first lane's notebooks share one run cache (results_dir): a run of the
# smoke profile made by one is replayed by the next; the second lane's make their own runs.
LANES = (["01_quickstart", "02_catastrophic_forgetting", "03_hat_step_by_step", "04_regularisers",
          "05_dwa_step_by_step", "06_paper_fig5_fig6", "09_related_work_table", "11_explorer"],
         ["10_paper_vs_original_code", "12_why_dwa_forgets", "07_paper_fig7_masks_pca", "08_hat_compression"])


def papermill(path: Path, out: Path, kernel: str, cwd: Path, **parameters) -> subprocess.CompletedProcess:
    """`python -m papermill path out -p NAME VALUE ...` started in `cwd`."""
    args = [a for name, value in parameters.items() for a in ("-p", name, str(value))]
    return subprocess.run([sys.executable, "-m", "papermill", str(path), str(out), "-k", kernel,
                           "--no-progress-bar", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture(scope="module")
def run_notebook(tmp_path_factory, kernel):
    """run(path) -> metrics: the notebook run once, as committed (only its output locations moved to
    a temporary folder, its runs cached in a shared one), started outside notebooks/, and remembered,
    so that a test of one notebook (-k) runs only that one."""
    tmp = tmp_path_factory.mktemp("nb")
    done = {}

    def run(path: Path) -> dict:
        if path.stem not in done:
            metrics = tmp / f"{path.stem}.json"
            got = papermill(path, tmp / path.name, kernel, tmp, metrics_path=metrics,
                            figures_dir=tmp / "figures", results_dir=tmp / "runs")
            assert got.returncode == 0, f"{path.stem}: {got.stderr[-3000:]}"
            done[path.stem] = json.loads(metrics.read_text())
            ran = nbformat.read(tmp / path.name, as_version=4)
            pngs = [o["data"]["image/png"] for c in ran.cells if c.cell_type == "code" for o in c.outputs
                    if "image/png" in o.get("data", {})]
            # what the front end receives: base64 strings of PNG files
            assert all(isinstance(p, str) and base64.b64decode(p).startswith(PNG) for p in pngs), path.stem
            done[path.stem]["_png_outputs"] = len(pngs)
        return done[path.stem]

    return run


@pytest.fixture(scope="module")
def executed(run_notebook):
    """Every notebook run once, two lanes at a time; {stem: metrics}."""
    from concurrent.futures import ThreadPoolExecutor

    by_stem = {path.stem: path for path in NOTEBOOKS}
    lanes = [[by_stem.pop(stem) for stem in lane if stem in by_stem] for lane in LANES]
    lanes[0] += by_stem.values()  # a notebook not placed yet runs in the first lane
    with ThreadPoolExecutor(len(lanes)) as pool:
        list(pool.map(lambda paths: [run_notebook(p) for p in paths], lanes))  # re-raises a failure
    return {path.stem: run_notebook(path) for path in NOTEBOOKS}


def test_outputs_land_in_notebooks_out_wherever_papermill_starts(kernel, tmp_path):
    """`papermill notebooks/11_explorer.ipynb out.ipynb` started outside notebooks/ (here: an empty
    folder) writes into the checkout's notebooks/_out/, not into the folder it was started in."""
    metrics = ROOT / "notebooks" / "_out" / "11_explorer.json"
    before = metrics.stat().st_mtime_ns if metrics.exists() else 0
    got = papermill(ROOT / "notebooks" / "11_explorer.ipynb", tmp_path / "out.ipynb", kernel, tmp_path)
    assert got.returncode == 0, got.stderr[-3000:]
    assert metrics.stat().st_mtime_ns > before
    assert [p.name for p in tmp_path.iterdir()] == ["out.ipynb"]


def test_relative_paths_start_from_notebooks(tmp_path, monkeypatch):
    """From the notebook's folder in JupyterLab (a folder named notebooks/), from the checkout's
    notebooks/ anywhere else; absolute paths stay."""
    from dwa_core import notebook

    monkeypatch.chdir(tmp_path)
    assert notebook.resolve("_out/x.json") == ROOT / "notebooks" / "_out" / "x.json"
    assert notebook.resolve(tmp_path / "y") == tmp_path / "y" and notebook.resolve(None) is None
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert notebook.resolve("_out/x.json") == tmp_path / "notebooks" / "_out" / "x.json"


def test_every_notebook_records_metrics(executed):
    assert set(executed) == {p.stem for p in NOTEBOOKS}
    assert all(m["profile"] == "smoke" for m in executed.values())


# Margins below are for the smoke profile of dwa_core/figures.py, seed 0 (measured: forgetting sgd
# 0.114, hat 0.000, joint 0.004; average accuracy joint 0.994, random 0.495).
FORGETTING_MARGIN = 0.04  # numerics 2: SGD forgets 0.049 on the smoke profile (seeds 0-1)


def test_figures_are_shown(executed):
    """Figures appear in the executed notebooks through the inline backend (no formatter code)."""
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
    # numerics 2: HAT forgets nothing; its final accuracy is below SGD's on this smoke profile (one
    # task of seed 0 is learned only to 0.62), so only retention is asserted
    assert m["forgetting"]["hat"] <= 0.01 < m["forgetting"]["sgd"]


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
    assert min(final) > 0.6  # fit_hat's run keeps every task learned (numerics 2, seed 0: one at 0.62)


def test_dwa_walkthrough(executed):
    m = executed["05_dwa_step_by_step"]
    assert m["embedding_shape"] == [8, 100]
    # the smoke profile's DWA network: 3 masked layers of 50 units on the 8x8 digits (64 inputs)
    assert m["mask_shapes"] == {"fc1.weight": [8, 50, 64], "fc2.weight": [8, 50, 50],
                                "fc3.weight": [8, 50, 50]}
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
    # numerics 2: HAT does not forget (BWT 0) while SGD does; HAT's rho is lower than SGD's on this
    # smoke profile because one task of seed 0 is learned only to 0.62 (rho counts it as forgotten)
    assert summary["hat"]["backward_transfer"] >= summary["sgd"]["backward_transfer"] + 0.03
    # numerics 2: "% forgotten" counts HAT's task learned to 0.62 as forgotten (11.1 vs SGD's 4.7), so
    # the retention claim is asserted on backward transfer (below)
    table = executed["09_related_work_table"]["summary"]
    assert {"sgd", "ewc"} <= set(table)
    assert all(row["rho_ci95"] >= 0 for row in table.values())


def test_hat_compression_uses_fewer_units_with_larger_c(executed):
    m = executed["08_hat_compression"]
    if not m["available"]:
        pytest.skip("hat is not registered yet")
    assert m["compression"]["2.0"]["active_units"] <= m["compression"]["0.1"]["active_units"] + 1e-9
    # the committed run on the paper's AlexNet (tables/hat-compression-mixture-offline.json)
    committed = m["committed_compression"]
    assert committed["7.5"]["active_weights"] < committed["0.1"]["active_weights"]


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


def test_notebook_12_why_dwa_forgets(run_notebook):
    """The diagnosis of the default run and each ablation: finite measures in range, and the
    freeze_context ablation's own claim (its embeddings never move after task 0)."""
    from dwa_core.diagnosis import SUMMARY

    m = run_notebook(ROOT / "notebooks" / "12_why_dwa_forgets.ipynb")
    summary = m["summary"]
    assert list(summary) == ["default", "lamb_triplet=0", "lamb_plasticity=0",
                             "lamb_triplet=0,lamb_plasticity=0,lamb_sparsity=0", "freeze_context",
                             "sparsity_form=original-code", "fisher_form=batch", "lamb_plasticity=0.01",
                             "lamb_plasticity=1", "plasticity_form=original-code"]
    for row in summary.values():
        assert all(math.isfinite(row[k]) for k in SUMMARY) and row["pairs"] == 10  # 5 tasks
        assert 0 <= row["final_accuracy"] <= 1 and 0 <= row["overlap"] <= 1 and 0 <= row["mask_cross"] <= 1
    assert summary["freeze_context"]["embedding_drift"] == 0 < summary["default"]["embedding_drift"]
    assert m["_png_outputs"] >= 3 and set(m["correlations"]) >= {"mask_drift", "weight_change",
                                                                  "embedding_saturation"}
    # the paper's network (tables/dwa-diagnosis-mixture-offline.json): W held, W ⊙ H moved
    alexnet = m["alexnet_summary"]["dwa mask_start=0.2"]
    assert m["alexnet_runs"] and alexnet["runs"] == 3
    assert alexnet["weight_change"] < 0.01 < 0.5 < alexnet["effective_change"]


def test_fig7_notebook_shows_the_paper_network_figures(executed):
    m = executed["07_paper_fig7_masks_pca"]
    assert m["committed_fig7"] == ["fig7_embedding_pca_mixture-offline.png",
                                   "fig7_masks_mixture-offline_digits.png",
                                   "fig7_masks_mixture-offline_fashion_mnist.png"]
    assert m["_png_outputs"] >= 3 + len(m["committed_fig7"])


def test_explorer_renders_without_training(executed):
    """Headless, nobody clicks Run: the explorer renders its controls and trains nothing."""
    m = executed["11_explorer"]
    assert "ready" in m["status"] and "done" not in m["status"]
    assert m["n_controls"]["train"] >= 4 and m["n_controls"]["approach"] == 4  # hat: c, s_max, 2 clamps


@pytest.mark.parametrize("kwargs, message", [
    ({"profile": "bogus", "seeds": [0]}, "profile: must be one of 'paper', 'smoke'; got 'bogus'"),
    ({"profile": "smoke", "seeds": 3}, "seeds: must be a non-empty list of integers >= 0"),
    ({"profile": "smoke", "seeds": [0, -1]}, "seeds: must be a non-empty list"),
    ({"profile": "smoke", "seeds": [0], "device": "gpu"},
     "device: must be 'auto', 'cpu', 'cuda[:N]' or 'mps'"),
])
def test_check_parameters_messages(kwargs, message):
    from dwa_core.walkthrough import ParameterError, check_parameters

    with pytest.raises(ParameterError, match=message.replace("[", r"\[").replace("(", r"\(")) as err:
        check_parameters(**kwargs)
    assert err.value._render_traceback_() == [f"ParameterError: {err.value}"]  # one line in Jupyter
    assert check_parameters("smoke", (0, 1)) == ("smoke", [0, 1])


def test_check_checkout_fails_loudly_for_another_checkout(tmp_path):
    from dwa_core.walkthrough import ParameterError, check_checkout

    (tmp_path / "dwa_core").mkdir()
    (tmp_path / "notebooks").mkdir()
    with pytest.raises(ParameterError, match="run `bash scripts/setup.sh`"):
        check_checkout(tmp_path / "notebooks")
    check_checkout(ROOT / "notebooks")  # this checkout: fine


def test_summary_is_short_and_rounded():
    from dwa_core.walkthrough import summary

    record = {"profile": "smoke", "acc_matrix": [[0.1234567] * 5] * 5, "n": 3,
              "metrics": {"sgd": {"forgetting": 0.123456789}}, **{f"k{i}": float(i) / 7 for i in range(40)}}
    table = summary(record, limit=10)
    values = table["value"].tolist()
    assert len(values) == 11 and "more in the metrics file" in values[-1]
    assert table.loc["metrics.sgd.forgetting", "value"] == 0.123 and table.loc["n", "value"] == 3
    assert "acc_matrix" not in table.index


def test_readable_tables_round_and_wrap_headers():
    import pandas as pd

    from dwa_core.notebook import readable

    table = readable(pd.DataFrame({"weight_change_unweighted": [0.123456], "task_name": ["a"]}))
    assert list(table.columns) == ["weight change unweighted", "task name"]  # a browser can wrap these
    assert table.iloc[0, 0] == 0.123


def test_pre_save_hook_drops_language_info_only():
    """scripts/setup.sh's Jupyter pre-save hook: a saved notebook keeps everything but language_info."""
    from dwa_core.notebook import normalise_on_save

    model = {"type": "notebook", "content": {"metadata": {"kernelspec": KERNELSPEC, "language_info": {}},
                                             "cells": []}}
    normalise_on_save(model, path="x.ipynb", contents_manager=None)
    assert model["content"] == {"metadata": {"kernelspec": KERNELSPEC}, "cells": []}
    text = {"type": "file", "content": "language_info"}
    normalise_on_save(text)
    assert text["content"] == "language_info"
