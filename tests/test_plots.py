"""Figures build from small hand-made Results; mask/PCA helpers checked by hand."""

import json

import matplotlib
import numpy as np
import pytest

import dwa_core
from dwa_core import numerics, plots
from dwa_core.results import Results

matplotlib.use("Agg")  # the tests only draw to files


def _res(approach, acc, benchmark="split-digits", seed=0):
    T = len(acc)
    return Results({"approach": approach, "benchmark": benchmark, "seed": seed}, [f"t{i}" for i in range(T)],
                   [2] * T, acc, [[0.0] * T for _ in range(T)], completed_tasks=T)


SGD = [[0.9, 0, 0], [0.5, 0.9, 0], [0.4, 0.6, 0.9]]
JOINT = [[0.9, 0, 0], [0.9, 0.9, 0], [0.9, 0.9, 0.9]]
RANDOM = [[0.5, 0, 0], [0.5, 0.5, 0], [0.5, 0.5, 0.5]]


def test_accuracy_curves_lines_start_when_learned():
    fig = plots.plot_accuracy_curves({"sgd": _res("sgd", SGD), "joint": _res("joint", JOINT)})
    ax = fig.axes[0]
    assert len(ax.lines) == 3
    # task 1 is learned second: its line starts at x=2 with y = 0.9, then 0.6
    x, y = ax.lines[1].get_data()
    assert list(x) == [2, 3] and list(y) == [0.9, 0.6]
    assert "split-digits (offline data)" in fig._suptitle.get_text()
    assert ax.get_ylim() == (0, 1.02)


def test_retention_values_by_hand():
    fig = plots.plot_retention({"sgd": [_res("sgd", SGD), _res("sgd", SGD, seed=1)]},
                               _res("random", RANDOM), _res("joint", JOINT))
    x, y = fig.axes[0].lines[0].get_data()
    # t=1: (0.5-0.5)/(0.9-0.5)=0; t=2: mean((0.4-.5)/.4, (0.6-.5)/.4) = mean(-.25, .25) = 0
    assert list(x) == [2, 3]
    np.testing.assert_allclose(y, [0.0, 0.0])
    assert "offline data" in fig.axes[0].get_title()


def test_forgetting_ratio_with_ci():
    a = _res("sgd", SGD)
    b = _res("sgd", [[0.9, 0, 0], [0.7, 0.9, 0], [0.4, 0.6, 0.9]], seed=1)
    fig = plots.plot_forgetting_ratio({"sgd": [a, b]}, _res("random", RANDOM), _res("joint", JOINT))
    _, y = fig.axes[0].lines[0].get_data()
    # t=0: (0.9-.5)/(.4)-1 = 0 for both; t=1 seed0: mean(0/.4, .4/.4)-1 = -0.5, seed1: mean(.5, 1)-1=-.25
    np.testing.assert_allclose(y[:2], [0.0, -0.375])
    assert len(fig.axes[0].collections) == 1  # the CI band


def test_accuracy_matrix_and_mixture_title():
    fig = plots.plot_accuracy_matrix(_res("sgd", SGD, benchmark="mixture"))
    assert fig.axes[0].get_title() == "sgd - mixture"
    assert len(fig.axes[0].texts) == 6


def test_mask_image_averages_kernel_axes():
    conv = np.zeros((2, 1, 3, 3))
    conv[1] = 1.0
    conv[0, 0, 0, 0] = 0.9
    np.testing.assert_allclose(plots.mask_image(conv), [[0.1], [1.0]])
    assert plots.mask_image(np.ones((3, 4))).shape == (3, 4)
    assert plots.mask_image(np.ones(4)).shape == (1, 4)


def test_pca_2d_recovers_main_axis():
    x = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [4.0, 0.0, 0.0]])
    proj = plots.pca_2d(x)
    np.testing.assert_allclose(np.abs(proj[:, 0]), [2.0, 0.0, 2.0], atol=1e-9)


def _intro():
    rng = np.random.default_rng(0)
    return {f"task{k}": {"images": rng.random((4, 1, 8, 8)),
                         "masks": {"c1": rng.random((4, 5, 3, 3, 3)), "fc1": rng.random((4, 7))},
                         "embedding": rng.random((4, 6))} for k in range(2)}


def test_masks_and_pca_figures(tmp_path):
    fig = plots.plot_masks(_intro(), "task1", benchmark="split-digits")
    assert [ax.get_title() for ax in fig.axes[:3]] == ["input", "c1", "fc1"]
    bar = fig.axes[3]  # the colour bar: masks in [0, 1] (sigmoid-like) get the [0, 1] scale
    assert bar.get_label() == "<colorbar>" and bar.get_ylim() == (0.0, 1.0)
    signed = _intro()
    signed["task1"]["masks"]["fc1"] = signed["task1"]["masks"]["fc1"] * 2 - 1  # tanh gate: H in (-1, 1)
    assert plots.plot_masks(signed, "task1").axes[3].get_ylim() == (-1.0, 1.0)
    fig2 = plots.plot_embedding_pca(_intro(), benchmark="split-digits")
    assert len(fig2.axes[0].collections) == 2
    paths = plots.save_figure(fig2, tmp_path / "pca", {"a": 1}, "python -m x")
    assert all(p.exists() for p in paths)
    assert json.loads(paths[2].read_text()) == {"config": {"a": 1}, "command": "python -m x",
                                                "numerics": {"version": numerics.VERSION,
                                                             "package": dwa_core.__version__}}


@pytest.mark.parametrize("name", ["mixture", "split-digits"])
def test_benchmark_label(name):
    assert plots.benchmark_label(name) == (name if name == "mixture" else f"{name} (offline data)")


def test_matrix_text_colour_follows_cell_brightness():
    """Dark cells (low accuracy in viridis) get white text, bright (yellow) cells black text."""
    fig = plots.plot_accuracy_matrix(_res("sgd", [[0.05, 0, 0], [0.5, 0.98, 0], [0.3, 0.6, 0.97]]))
    colours = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
    assert colours["0.05"] == "white" and colours["0.98"] == "black" and colours["0.97"] == "black"
    assert plots.text_colour("yellow") == "black" and plots.text_colour("navy") == "white"


def test_matrix_axes_carry_task_names():
    fig = plots.plot_accuracy_matrix(_res("sgd", SGD))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["t0", "t1", "t2"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["t0", "t1", "t2"]


def test_unfinished_rows_stay_blank():
    res = _res("sgd", SGD)
    res.completed_tasks = 2
    fig = plots.plot_accuracy_matrix(res)
    assert len(fig.axes[0].texts) == 3  # rows 0 and 1 only


def test_task_ticks_are_integers():
    """Fig. 6 and rho: 'last learned task' never shows 2.5."""
    runs = {"sgd": [_res("sgd", SGD), _res("sgd", SGD, seed=1)]}
    for fig in (plots.plot_retention(runs, _res("random", RANDOM), _res("joint", JOINT)),
                plots.plot_forgetting_ratio(runs, _res("random", RANDOM), _res("joint", JOINT))):
        fig.canvas.draw()
        ticks = fig.axes[0].get_xticks()
        assert len(ticks) and all(float(t).is_integer() for t in ticks), ticks


def test_figures_read_on_a_laptop(tmp_path):
    fig = plots.plot_accuracy_matrix(_res("sgd", SGD))
    assert fig.dpi >= 100
    png = plots.save_figure(fig, tmp_path / "m", {}, "x")[0]
    import matplotlib.image as mpimg

    height, width = mpimg.imread(png).shape[:2]
    assert width >= 350 and height >= 300


def test_importing_plots_keeps_the_backend():
    """dwa_core.plots never selects a backend: a notebook's inline backend stays inline."""
    import os
    import subprocess
    import sys

    code = "import dwa_core.plots, matplotlib; print(matplotlib.get_backend())"
    env = dict(os.environ, MPLBACKEND="module://matplotlib_inline.backend_inline")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "inline" in out.stdout.strip().lower(), out.stdout
