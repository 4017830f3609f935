"""benchmarks/numerics_check.py: the chosen point it retrains under the other numerics, the paired
interval it prints, its refusal of a comparison of other numerics, and its committed files."""

import json
import sys
from pathlib import Path

import pytest

from dwa_core import numerics

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import numerics_check  # noqa: E402


def test_paired_difference_and_its_interval_by_hand():
    out = numerics_check.paired([0.5, 0.7, 0.9], [0.4, 0.5, 0.6])
    assert out["per_seed"] == pytest.approx([0.1, 0.2, 0.3])
    assert out["mean"] == pytest.approx(0.2)
    # sd of (0.1, 0.2, 0.3) = 0.1, sem = 0.1 / sqrt(3), t(0.975, df 2) = 4.302653
    assert out["ci95"] == pytest.approx(4.302653 * 0.1 / 3 ** 0.5, rel=1e-5)


def test_the_chosen_point_of_the_committed_comparison_on_its_reported_seeds():
    cfgs, row = numerics_check.chosen_configs("compare-permuted-fmnist", "dwa")
    data = json.loads((ROOT / "tables" / "compare-permuted-fmnist.json").read_text())
    committed = next(r for r in data["rows"] if r["approach"] == "dwa")
    assert [c.seed for c in cfgs] == committed["seeds"] == row["seeds"]
    assert {c.approach for c in cfgs} == {"dwa"}
    assert all(c.approach_params["lamb_plasticity"] == committed["chosen"]["lamb_plasticity"] for c in cfgs)


def test_a_comparison_of_other_numerics_is_refused(monkeypatch):
    monkeypatch.setattr(numerics, "VERSION", numerics.other())
    with pytest.raises(SystemExit, match=r"tables/compare-permuted-fmnist.json: numerics version"):
        numerics_check.chosen_configs("compare-permuted-fmnist", "dwa")


CHECKS = sorted((ROOT / "tables").glob("numerics-check-*.json"))


@pytest.mark.parametrize("path", CHECKS, ids=lambda p: p.name)
def test_committed_checks_hold_the_comparisons_figures(path):
    """The committed figures of the default numerics in a check file are its comparison's, seed by
    seed, and the differences are the other numerics' minus them."""
    check = json.loads(path.read_text())
    data = json.loads((ROOT / "tables" / f"{check['comparison']}.json").read_text())
    row = next(r for r in data["rows"] if r["approach"] == check["approach"])
    assert check["seeds"] == row["seeds"] and check["chosen"] == row["chosen"]
    for measure, entry in check["test"].items():
        base = entry[f"numerics {check['numerics']['version']}"]
        other = entry[f"numerics {check['checked_numerics']}"]
        assert base == row["test"][measure]["per_seed"]
        assert entry["difference"]["per_seed"] == pytest.approx([o - b for o, b in zip(other, base)])
