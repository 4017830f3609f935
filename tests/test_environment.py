"""The checkout's environment behaves like one: after `source .venv/bin/activate` the commands a
user types (jupyter lab, papermill, pytest, dwa-core) run, on this checkout's dwa_core."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
COMMANDS = {"jupyter lab --version": r"^\d+\.\d+", "papermill --version": r"^\d+\.\d+",
            "pytest --version": r"^pytest \d", "dwa-core --help": r"usage: (.|\n)*\{run,list,"}


@pytest.fixture(scope="module")
def activated(tmp_path_factory):
    """A shell command runner with .venv activated, started outside the checkout."""
    if not (VENV / "bin" / "activate").is_file() or shutil.which("bash") is None:
        pytest.skip("no .venv of scripts/setup.sh in this checkout")
    cwd = tmp_path_factory.mktemp("elsewhere")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = "/usr/bin:/bin"  # nothing of the running interpreter's environment

    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", f"source {VENV}/bin/activate && {command}"], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=120)

    return run


@pytest.mark.parametrize("command", COMMANDS)
def test_command_runs_from_the_activated_venv(activated, command):
    import re

    where = activated(f"command -v {command.split()[0]}")
    assert where.stdout.strip() == str(VENV / "bin" / command.split()[0]), where
    got = activated(command)
    assert got.returncode == 0, got.stderr
    assert re.search(COMMANDS[command], got.stdout, re.M), got.stdout


def test_commands_import_this_checkout(activated):
    """The scripts run .venv's python, which imports this checkout's dwa_core (not another one's)."""
    for name in {c.split()[0] for c in COMMANDS} | {"jupyter-lab"}:
        assert (VENV / "bin" / name).read_text().splitlines()[0] == f"#!{VENV}/bin/python", name
    got = activated("python -c 'import dwa_core; print(dwa_core.__file__)'")
    assert Path(got.stdout.strip()).resolve() == ROOT / "dwa_core" / "__init__.py", got.stderr
