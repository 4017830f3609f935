"""The README's "Measured" block is generated from the committed benchmark JSON files
(benchmarks/measured_table.py), and gpu_check.sh's step outputs merge into one JSON file that gives
the GPU rows. No timing is asserted: only that the figures written are the ones in the files."""

import importlib.util
import json
from pathlib import Path

import pytest

from dwa_core import numerics

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("measured_table", ROOT / "benchmarks" / "measured_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_block_equals_the_committed_files():
    module = _module()
    text = (ROOT / "README.md").read_text()
    block = text.split(module.START, 1)[1].split(module.END, 1)[0].strip()
    assert block == module.markdown(module.TABLES)


FILES = ["bench-loop.json", "bench-dwa.json", "bench-fisher.json", "bench-approaches.json", "bench-data.json",
         "profile-dwa.json"]


@pytest.mark.parametrize("name", FILES)
def test_each_committed_file_has_ratios_and_the_load(name):
    data = json.loads((ROOT / "tables" / name).read_text())
    assert data["ratios"] and all(value > 0 for value in data["ratios"].values())
    assert len(data["machine"]["load"]) == 3 and "load average" in data["machine"]["uptime"]


def _fake_gpu_outputs(out: Path, bench: dict) -> None:
    """What gpu_check.sh leaves in OUT_DIR, written by hand (no GPU here)."""
    out.mkdir()
    (out / "gpu.txt").write_text("== gpu: nvidia-smi --query-gpu=name,memory.total --format=csv\n"
                                 "name, memory.total [MiB], driver_version\nFake GPU X1, 81559 MiB, 550.1\n"
                                 "== gpu: exit 0 after 1 s\n")
    (out / "equivalence.txt").write_text("== equivalence: python benchmarks/cuda_equivalence.py\n"
                                         "forward  3 tensors, largest rel. error 1.00e-07 (out)\nOK\n"
                                         "== equivalence: exit 0 after 41 s\n")
    (out / "mixture.txt").write_text("== mixture: python -m dwa_core run\ntraining\n")  # killed: no end line
    (out / "bench.json").write_text(json.dumps(bench))


def _bench(device_rows: dict) -> dict:
    results = {f"{name} @ {b}": dict(samples_per_s=s, training_mb=100.0 * b)
               for (name, b), s in device_rows.items()}
    ratios = {f"alexnet-dwa fast / plain @ {b}": device_rows[("alexnet-dwa fast", b)] / device_rows[
        ("alexnet (plain)", b)] for b in (32, 256)}
    return dict(results=results, ratios=ratios, command="bench_dwa.py --device cuda",
                machine=dict(date="d", load=[1.0, 2.0, 3.0], cpus=16, threads=16))


def test_gpu_outputs_merge_into_one_file_that_gives_the_gpu_rows(tmp_path):
    module = _module()
    bench = _bench({("alexnet (plain)", 32): 1000.0, ("alexnet-dwa fast", 32): 250.0,
                    ("alexnet (plain)", 256): 4000.0, ("alexnet-dwa fast", 256): 2000.0})
    out = tmp_path / "gpu-check"
    _fake_gpu_outputs(out, bench)
    merged = module.merge_gpu(out)
    assert json.loads((out / "gpu-check.json").read_text()) == merged
    assert merged["gpu"] == dict(name="Fake GPU X1", memory="81559 MiB", driver="550.1")
    assert merged["steps"]["equivalence"] == dict(exit=0, seconds=41, tail=[
        "forward  3 tensors, largest rel. error 1.00e-07 (out)", "OK"])
    assert merged["steps"]["mixture"]["exit"] is None and merged["ok"] is False
    assert merged["bench"] == bench
    assert numerics.mismatch(merged["numerics"]) is None  # copied to tables/, test_numerics accepts it

    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "gpu-check.json").write_text((out / "gpu-check.json").read_text())
    block = module.markdown(tables)
    gpu_row = next(line for line in block.splitlines() if line.startswith("| DWA AlexNet on a GPU"))
    assert "Fake GPU X1 (81559 MiB)" in gpu_row
    assert "fast / plain 0.25" in gpu_row and "fast / plain 0.50" in gpu_row
    assert "alexnet-dwa fast 250.0 samples/s, 3200 MB" in gpu_row
    assert "largest rel. error 1.00e-07 (out); OK" in block
    assert module.NO_GPU not in block


def test_without_the_gpu_file_every_gpu_row_says_not_measured(tmp_path):
    module = _module()
    block = module.markdown(tmp_path)  # no JSON at all
    rows = [line for line in block.splitlines() if line.startswith("| ") and line != block.splitlines()[2]]
    gpu = [row for row in rows if "GPU" in row.split("|")[1]]
    assert len(rows) == 9 and len(gpu) == 3
    assert all("not measured" in row.split("|")[3] for row in rows)  # 6 CPU files absent, 3 GPU rows


def test_rewrite_replaces_only_the_block(tmp_path):
    module = _module()
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{module.START}\nold\n{module.END}\noutro\n")
    module.rewrite_readme(readme, "new")
    assert readme.read_text() == f"intro\n{module.START}\nnew\n{module.END}\noutro\n"
