"""dwa_core.compare: one protocol, selection on validation, test metrics over seeds, README block."""

import json

import numpy as np
import pytest
from scipy import stats

from dwa_core import compare
from dwa_core.cli import main
from dwa_core.config import ConfigError
from dwa_core.results import Results

DEFINITION = """
[sweep]
name = "tiny-compare"
seeds = [100]
[select]
final_seeds = [0, 1]
[base]
benchmark = "split-digits"
benchmark_params = { per_class = 20 }
train = { epochs = 2, batch_size = 32, lr = 0.1 }
network_params = { hidden = 16, layers = 1 }
[[variants]]
approach = "sgd"
[[variants]]
approach = "ewc"
grid = { "approach_params.lamb" = [0.0, 1e12] }
"""


@pytest.fixture
def definition(tmp_path):
    path = tmp_path / "tiny-compare.toml"
    path.write_text(DEFINITION)
    return path


def test_comparison_selects_on_validation_and_reports_test_over_seeds(definition, tmp_path):
    out = tmp_path / "runs"
    data = compare.run_comparison(definition, out)
    rows = {r["label"]: r for r in data["rows"]}
    assert list(rows) == ["sgd", "ewc"]
    # the chosen EWC point is the candidate whose runs score highest on validation, recomputed here
    scores = {}
    for path in out.glob("*_ewc_100_*/results.json"):  # the candidates, on the selection seed
        r = Results.load(path)
        scores[r.config["approach_params"]["lamb"]] = np.mean(r.valid_acc[-1])
    assert len(scores) == 2
    best = max(scores, key=scores.get)
    assert rows["ewc"]["chosen"] == {"lamb": best}
    assert {c["params"]["lamb"]: c["valid_score"] for c in rows["ewc"]["candidates"]} == pytest.approx(scores)
    # the reported accuracy: mean and t-interval of the final seeds' test matrices
    finals = [Results.load(p) for p in out.glob("*_sgd_[01]_*/results.json")]
    avg = sorted(np.mean(r.acc[-1]) for r in finals)
    assert sorted(rows["sgd"]["test"]["avg_acc"]["per_seed"]) == pytest.approx(avg)
    mean = np.mean(avg)
    half = stats.t.ppf(0.975, 1) * np.std(avg, ddof=1) / np.sqrt(2)
    assert rows["sgd"]["test"]["avg_acc"]["mean"] == pytest.approx(mean)
    assert rows["sgd"]["test"]["avg_acc"]["ci95"] == pytest.approx(half)
    assert data["protocol"]["train"]["epochs"] == 2 and data["cpu_seconds"]["total"] > 0
    text = compare.markdown(data)
    assert "| ewc |" in text and f"lamb={best}" in text and "Selection" in text
    assert data["selection"] == {"rule": compare.SCORE, "seeds": [100], "allow_overlap": False,
                                 "tuned_train": []}
    assert "on seeds [100] (disjoint from the reported seeds)" in text


def test_selection_seeds_that_are_reported_seeds_are_refused_unless_allowed(definition):
    overlapping = DEFINITION.replace("seeds = [100]", "seeds = [1, 7]")
    definition.write_text(overlapping)
    refused = r"tiny-compare.toml: selection seeds .* share \[1\].*allow_overlap"
    with pytest.raises(ConfigError, match=refused):
        compare.load_comparison(definition)
    allow = "final_seeds = [0, 1]\nallow_overlap = {}"
    definition.write_text(overlapping.replace("final_seeds = [0, 1]", allow.format("true")))
    comp = compare.load_comparison(definition)
    assert comp.allow_overlap and comp.seeds == [1, 7] and comp.final_seeds == [0, 1]
    definition.write_text(DEFINITION.replace("final_seeds = [0, 1]", allow.format('"yes"')))
    with pytest.raises(ConfigError, match="allow_overlap: must be true or false"):
        compare.load_comparison(definition)


def test_the_readme_sentence_names_an_allowed_overlap():
    data = compare.read_data(TABLES[0])
    data["selection"] = {**data["selection"], "allow_overlap": True}
    assert "[select] allow_overlap = true" in compare.markdown(data)


def test_a_row_may_not_change_the_protocol(definition):
    definition.write_text(DEFINITION + '[[variants]]\napproach = "hat"\ntrain = { lr = 0.05 }\n')
    with pytest.raises(ConfigError, match="one protocol"):
        compare.load_comparison(definition)
    definition.write_text(DEFINITION.replace("final_seeds = [0, 1]", "final_seeds = [0]"))
    with pytest.raises(ConfigError, match="at least 2 seeds"):
        compare.load_comparison(definition)
    definition.write_text(DEFINITION + '[[variants]]\napproach = "sgd"\n')
    with pytest.raises(ConfigError, match="two rows"):
        compare.load_comparison(definition)


def test_cli_writes_data_and_refreshes_the_readme_block(definition, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- comparison:tiny-compare start -->\nold\n"
                      "<!-- comparison:tiny-compare end -->\nrest\n")
    data_file = tmp_path / "tiny.json"
    code = main(["compare", str(definition), "--output-dir", str(tmp_path / "runs"), "--data", str(data_file),
                 "--readme", str(readme)])
    assert code == 0
    text = readme.read_text()
    assert "old" not in text and "| sgd |" in text and text.startswith("intro\n") and text.endswith("rest\n")
    data = json.loads(data_file.read_text())
    assert data["name"] == "tiny-compare"
    # from the data file alone the same block comes back, nothing trained
    assert main(["compare", "--from-data", str(data_file), "--readme", str(readme)]) == 0
    assert "already up to date" in capsys.readouterr().out
    assert main(["compare"]) == 2


def test_retention_order_sentence_reads_the_intervals():
    def stat(mean, ci):
        return {"avg_acc": {"mean": mean, "ci95": ci}}

    data = {"rows": [{"label": "hat", "test": stat(0.95, 0.01)}, {"label": "ewc", "test": stat(0.94, 0.02)},
                     {"label": "sgd", "test": stat(0.80, 0.02)}, {"label": "dwa", "test": stat(0.85, 0.05)}],
            "references": {"joint": stat(0.99, 0.005)}}
    text = compare.retention_order(data)
    assert "joint ≥ hat: clearly" in text and "hat ≥ ewc: within the intervals" in text
    assert "ewc ≥ sgd: clearly" in text and "DWA ranks 4 of 5" in text
    data["rows"][2]["test"] = stat(0.97, 0.01)  # sgd above ewc
    assert "ewc ≥ sgd: reversed" in compare.retention_order(data)


TABLES = sorted(compare.TABLES_DIR.glob("compare-*.json"))


@pytest.mark.parametrize("path", TABLES, ids=[p.stem for p in TABLES])
def test_readme_tables_are_generated_from_the_committed_data(path):
    """Each README comparison block is exactly markdown(data file): no hand-edited numbers."""
    data = compare.read_data(path)
    readme = (compare.TABLES_DIR.parent / "README.md").read_text()
    start, end = (compare.MARK.format(name=data["name"], edge=e) for e in ("start", "end"))
    block = readme.split(start, 1)[1].split(end, 1)[0].strip()
    assert block == compare.markdown(data).strip()
    # the protocol is one TrainConfig for every row, and every row has its final seeds
    assert all(len(r["test"]["avg_acc"]["per_seed"]) >= 3 for r in data["rows"])
    assert compare.load_comparison(data["definition"].split("/")[-1]).final_seeds == data["rows"][0]["seeds"]


def test_a_grid_may_tune_only_the_train_fields_the_definition_names(definition):
    tuned = DEFINITION.replace("final_seeds = [0, 1]", 'final_seeds = [0, 1]\ntuned_train = ["lr"]')
    definition.write_text(tuned + '[[variants]]\napproach = "hat"\npoints = [{}, { "train.lr" = 0.05 }]\n')
    comp = compare.load_comparison(definition)
    hat = next(r for r in comp.rows if r.label == "hat")
    assert comp.tuned_train == ("lr",) and [c.train.lr for c in hat.candidates] == [0.1, 0.05]
    assert compare._changes(hat.candidates[1], comp.base) == {"train.lr": 0.05}
    definition.write_text(tuned + '[[variants]]\napproach = "hat"\npoints = [{ "train.epochs" = 3 }]\n')
    with pytest.raises(ConfigError, match="tuned_train fields: lr"):
        compare.load_comparison(definition)
    definition.write_text(DEFINITION.replace("final_seeds = [0, 1]", 'final_seeds = [0, 1]\ntuned_train = ["lrr"]'))
    with pytest.raises(ConfigError, match="tuned_train: must be a list of TrainConfig fields"):
        compare.load_comparison(definition)


@pytest.mark.parametrize("path", TABLES, ids=[p.stem for p in TABLES])
def test_no_committed_choice_sits_on_an_edge_of_its_grid(path):
    """Issue 20: every grid of three or more values brackets the point it chose (a train field a
    candidate leaves out runs at the protocol's value)."""
    data = compare.read_data(path)
    assert [(row["label"], compare.grid_edges(row, data["protocol"])) for row in data["rows"]
            if compare.grid_edges(row, data["protocol"])] == []


def test_grid_edges_by_hand():
    from dwa_core.compare import edge_sentence, grid_edges

    def row(label, chosen, *others, approach="ewc"):
        cands = [{"params": chosen, "chosen": True}] + [{"params": p, "chosen": False} for p in others]
        return {"label": label, "approach": approach, "candidates": cands}

    inside = row("ewc", {"lamb": 500.0}, {"lamb": 50.0}, {"lamb": 5000.0})
    edge = row("ewc", {"lamb": 5000.0}, {"lamb": 50.0}, {"lamb": 500.0})
    two = row("ewc", {"lamb": 50.0}, {"lamb": 500.0})  # two values bracket nothing: not judged
    assert grid_edges(inside) == [] and grid_edges(edge) == ["lamb=5000"] and grid_edges(two) == []
    # points that leave a parameter out run it at the approach's default (DWA's λ1 = 20)
    points = row("dwa", {"lamb_triplet": 80.0}, {}, {"lamb_triplet": 5.0}, approach="dwa")
    assert grid_edges(points) == ["lamb_triplet=80"]
    bracketed = row("dwa", {}, {"lamb_triplet": 80.0}, {"lamb_triplet": 5.0}, approach="dwa")
    assert grid_edges(bracketed) == []
    # PathNet's generations are a training budget: its largest value is named, not counted as an edge
    budget = row("pathnet", {"generations": 320}, {"generations": 20}, {"generations": 80}, approach="pathnet")
    assert grid_edges(budget) == []
    assert "pathnet's generations = 320" in edge_sentence({"rows": [budget]})
    # λ = 0 is EWC's declared lower bound (the penalty off): a grid cannot go below it
    at_bound = row("ewc", {"lamb": 0.0}, {"lamb": 50.0}, {"lamb": 500.0})
    assert grid_edges(at_bound) == []
    lr = row("dwa", {"train.lr": 0.3}, {}, {"train.lr": 0.03}, approach="dwa")  # {}: the protocol's 0.1
    assert grid_edges(lr) == [] and grid_edges(lr, {"train": {"lr": 0.1}}) == ["train.lr=0.3"]
    assert edge_sentence({"rows": [inside, two]}).startswith("Every grid")
    assert edge_sentence({"rows": [inside, edge]}).endswith(": ewc (lamb=5000).")


def test_the_chosen_point_is_found_once_when_selection_runs_on_several_seeds():
    """The shipped comparisons select on seeds 100-102, so each point is a candidate three times;
    chosen_point (used by scripts/regenerate.py and benchmarks/numerics_check.py) returns it once,
    as the data file's row names it, and refuses a point that is no candidate."""
    comp = compare.load_comparison("compare-mixture-offline")
    assert comp.seeds == [100, 101, 102]
    data = compare.read_data(compare.TABLES_DIR / "compare-mixture-offline.json")
    row = next(r for r in data["rows"] if r["approach"] == "dwa")
    point = compare.chosen_point(comp, row)
    assert point.seed == 0 and compare._changes(point, comp.base) == row["chosen"]
    assert sum(c.replace(seed=0).key() == point.key() for r in comp.rows for c in r.candidates) == 3
    with pytest.raises(ValueError, match="0 candidates match"):
        compare.chosen_point(comp, {**row, "chosen": {"lamb": -1.0}})

