"""DWA's embedding measures (dwa_core.functional.embedding, dwa_core.diagnosis.embedding): by hand on
small tensors, the collapse they are meant to find, and on a tiny real run's snapshots."""

import math

import numpy as np

import pytest
import torch

from dwa_core import diagnosis
from dwa_core.diagnosis.embedding import by_task, embedding_frame, pair_columns
from dwa_core.functional.embedding import nearest_centroid_accuracy, saturation, spread, task_spread


def test_saturation_and_spread_by_hand():
    e = torch.tensor([[1.0, 0.5], [-0.9995, 0.5], [0.2, 0.5], [-1.0, 0.5]])
    assert saturation(e) == pytest.approx(3 / 8)  # 1.0, -0.9995, -1.0 exceed 0.999
    # column 0: mean -0.19988, population std by hand; column 1: 0
    col = [1.0, -0.9995, 0.2, -1.0]
    mean = sum(col) / 4
    std0 = math.sqrt(sum((v - mean) ** 2 for v in col) / 4)
    assert spread(e) == pytest.approx((std0 + 0.0) / 2)
    assert task_spread([torch.tensor([[1.0, 0.0]]), torch.tensor([[-1.0, 0.0]])]) == pytest.approx(0.5)


def test_nearest_centroid_accuracy_by_hand():
    a = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0]])  # odd rows: (0.1, 0), (5, 5)
    b = torch.tensor([[1.0, 1.0], [0.9, 1.0], [1.1, 1.0], [1.0, 0.9]])
    # centroids: a (0, 0.05), b (1.05, 1); a's (5, 5) is nearer b's centroid: 3 right of 4
    assert nearest_centroid_accuracy([a, b]) == pytest.approx(3 / 4)
    with pytest.raises(ValueError):
        nearest_centroid_accuracy([a])


def test_a_collapsed_embedding_reads_as_collapsed():
    code = torch.tensor([1.0, -1.0, 1.0])
    tasks = [code.expand(6, 3).clone() for _ in range(3)]  # every input of every task: one ±1 code
    assert saturation(tasks[0]) == 1.0 and spread(tasks[0]) == 0.0 and task_spread(tasks) == 0.0
    assert nearest_centroid_accuracy(tasks) == pytest.approx(1 / 3)  # ties go to task 0: chance


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from tests.test_diagnosis import _cfg, _run

    return _run(_cfg(tmp_path_factory.mktemp("runs")))


def test_embedding_frame_of_a_real_run(tiny_run):
    frame, emb = diagnosis.diagnose_run(tiny_run, samples_per_task=20, chunk=8, with_embedding=True)
    assert list(zip(emb.k, emb.u)) == [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]
    assert emb.saturation.between(0, 1).all() and emb.spread.between(0, 1).all()
    assert emb[emb.k == 0].task_separability.isna().all()
    assert emb[emb.k > 0].task_separability.between(0, 1).all()
    row = frame[(frame.t == 2) & (frame.u == 0)].iloc[0]
    assert row.embedding_saturation == pair_columns(emb, 2, 0)["embedding_saturation"]
    assert row.embedding_saturation_before == emb[(emb.k == 0) & (emb.u == 0)].saturation.iloc[0]
    table = by_task({"default": emb})
    assert list(table.k) == [0, 1, 2]
    assert table.saturation.iloc[2] == pytest.approx(emb[emb.k == 2].saturation.mean())


def test_embedding_frames_travel_in_the_data_file(tiny_run, tmp_path):
    frame, emb = diagnosis.diagnose_run(tiny_run, samples_per_task=10, with_embedding=True)
    path = diagnosis.save_diagnosis(tmp_path / "d.json", {"default": frame}, "cmd", {"default": emb})
    back = diagnosis.load_diagnosis(path, "embedding")
    assert list(back) == ["default"] and len(back["default"]) == len(emb)
    assert diagnosis.load_diagnosis(diagnosis.save_diagnosis(tmp_path / "e.json", {"default": frame}),
                                    "embedding") == {}


def test_embedding_frame_on_a_handmade_collapse():
    class Constant(torch.nn.Module):  # a "DWA network" whose embedding is one saturated code
        def forward(self, x, u):
            self.state = type("S", (), {"embedding": torch.ones(len(x), 4)})()
            return x

    inputs = [torch.zeros(6, 2), torch.zeros(6, 2)]
    emb = embedding_frame([Constant(), Constant()], inputs)
    assert (emb.saturation == 1.0).all() and (emb.spread == 0.0).all()
    assert emb[emb.k == 1].task_separability.iloc[0] == pytest.approx(0.5)


def test_embedding_figure_has_a_line_per_ablation(tiny_run, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from dwa_core import plots

    _, emb = diagnosis.diagnose_run(tiny_run, samples_per_task=10, with_embedding=True)
    fig = plots.plot_embedding_by_task(by_task({"default": emb, "other": emb.assign(saturation=0.5)}))
    lines = [line.get_label() for line in fig.axes[0].lines]
    assert lines == ["default", "other"] and [ln.get_label() for ln in fig.axes[2].lines][-1] == "chance"
    assert list(fig.axes[0].lines[1].get_ydata()) == [0.5, 0.5, 0.5]


def test_embedding_summary_by_hand():
    import pandas as pd

    from dwa_core.diagnosis import embedding as diagnosis_embedding

    def run(name, sat):  # a 3-task run: saturation of E_u^(k) for (k, u) in order
        pairs = [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]
        return pd.DataFrame({"run": name, "k": [k for k, _ in pairs], "u": [u for _, u in pairs],
                             "saturation": sat, "spread": 0.1, "task_spread": 0.2,
                             "task_separability": [float("nan"), 0.5, 0.5, 0.4, 0.4, 0.4]})

    frames = {"a": pd.concat([run("r0", [0.0, 1.0, 0.5, 1.0, 1.0, 1.0]),
                              run("r1", [0.2, 0.0, 0.5, 0.5, 0.5, 0.5])])}
    runs = diagnosis_embedding.per_run(frames)
    assert runs["saturation after task 1"].tolist() == [0.75, 0.25]  # mean over u <= 1 after task 1
    assert runs["saturation at the end"].tolist() == [1.0, 0.5]
    assert runs["task separability at the end"].tolist() == pytest.approx([0.4, 0.4])
    table = diagnosis.embedding.summary_markdown(frames).splitlines()
    half = 12.7062047 * np.std([0.75, 0.25], ddof=1) / np.sqrt(2)
    assert table[2].startswith(f"| a | 0.100 ± {12.7062047 * np.std([0.0, 0.2], ddof=1) / np.sqrt(2):.3f} | "
                               f"0.500 ± {half:.3f} |")
    assert table[2].endswith("| 0.400 | 2 |")  # the same in both runs: no interval


def test_diagnosing_runs_in_worker_processes_gives_the_same_data(tiny_run):
    import pandas as pd

    one = diagnosis.diagnose_runs([tiny_run, tiny_run], ["a", "b"], samples_per_task=8)
    two = diagnosis.diagnose_runs([tiny_run, tiny_run], ["a", "b"], samples_per_task=8, workers=2)
    for part in (0, 1):
        assert list(one[part]) == list(two[part]) == ["a", "b"]
        for label in ("a", "b"):
            pd.testing.assert_frame_equal(one[part][label], two[part][label])


def test_the_data_files_report_has_the_ablation_and_the_embedding_tables(tiny_run, tmp_path, capsys):
    from dwa_core import cli

    frame, emb = diagnosis.diagnose_run(tiny_run, samples_per_task=10, with_embedding=True)
    path = diagnosis.save_diagnosis(tmp_path / "d.json", {"default": frame}, "cmd", {"default": emb})
    assert cli.main(["diagnosis", "--from-data", str(path)]) == 0
    tables = capsys.readouterr().out.strip().split("\n\n")
    assert len(tables) == 2 and tables[0].startswith("| label | final_accuracy")
    assert tables[1].startswith("| label | saturation after task 0 | saturation after task 1")


def test_the_figure_counts_distinct_pairs_as_the_diagnosis_does():
    from dwa_core import plots

    assert tuple(plots.DISTINCT_MEASURES) == tuple(diagnosis.MEASURES)


def test_the_readme_tables_are_the_committed_diagnosis_data():
    """The README's "Why DWA forgets" tables are what `--from-data` prints from the committed file."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    block = readme.split("<!-- dwa-diagnosis start -->\n")[1].split("\n<!-- dwa-diagnosis end -->")[0]
    assert block == diagnosis.report_markdown(root / "tables" / "dwa-diagnosis-split-fmnist.json")


def test_embedding_figure_of_two_tasks_keeps_the_task_axis():
    """A run of two tasks has one separability point (k = 1): its panel still spans tasks 0 and 1, the
    fractions sit on [0, 1], and chance (1/2 at k = 1) is drawn where it can be seen."""
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    from dwa_core import plots

    table = pd.DataFrame({"label": "default", "k": [0, 1], "saturation": [0.3, 0.8], "spread": [0.2, 0.04],
                          "task_separability": [float("nan"), 0.67]})
    fig = plots.plot_embedding_by_task(table)
    for ax in fig.axes:
        low, high = ax.get_xlim()
        assert low < 0 and high > 1 and high - low < 2
    assert fig.axes[0].get_ylim() == fig.axes[2].get_ylim() == (-0.02, 1.02)
    chance = fig.axes[2].lines[-1]
    assert chance.get_label() == "chance" and list(chance.get_ydata()) == [0.5] and chance.get_marker() == "_"
