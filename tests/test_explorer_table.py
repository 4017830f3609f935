"""The README's explorer table is generated from its committed data file (benchmarks/explorer_defaults.py)."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("explorer_defaults",
                                                  ROOT / "benchmarks" / "explorer_defaults.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_block_equals_the_data_file():
    module = _module()
    data = json.loads((ROOT / "tables" / "explorer-defaults.json").read_text())
    text = (ROOT / "README.md").read_text()
    block = text.split(module.START, 1)[1].split(module.END, 1)[0].strip()
    assert block == module.markdown(data)
    assert {r["approach"] for r in data["rows"]} == set(module.APPROACHES)


def test_markdown_by_hand():
    row = {"approach": "sgd", "avg_acc": 0.9254, "learned_min": 1.0, "learned_max": 1.0, "bwt": -0.0931,
           "seconds": 12.6}
    lines = _module().markdown({"rows": [row]}).splitlines()
    assert lines[-1] == "| sgd | 0.925 | 1.00 | −0.093 | 13 |"
