"""allocator.keep_freed_memory: after it, a large tensor made again and again reuses its pages instead
of faulting them in each time (measured in a fresh process: the setting is process-wide)."""

import os
import platform
import subprocess
import sys

import pytest

from dwa_core import allocator

PROGRAM = """
import resource, sys, torch
from dwa_core import allocator
print(allocator.keep_freed_memory() if sys.argv[1] == "keep" else False)
def cycle():  # a 64 MiB tensor made, written and freed, as a per-step gradient is
    t = torch.empty(16 << 20)
    t.fill_(1.0)
    del t
for _ in range(5):  # malloc settles over the first cycles
    cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    cycle()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_freed_pages_are_reused_once_set():
    applied, kept = _faults("keep")
    default_applied, default = _faults("default")
    assert applied == "True" and default_applied == "False"
    # four 64 MiB tensors: 4 x 16384 pages faulted in again by default, almost none once set
    assert default > 30_000
    assert kept < 2_000


def test_the_environment_variable_leaves_malloc_alone(monkeypatch):
    monkeypatch.setenv("DWA_CORE_MALLOC", "default")
    assert allocator.keep_freed_memory() is False


def test_a_bad_malloc_setting_is_one_line_before_anything(monkeypatch):
    monkeypatch.setenv("DWA_CORE_MALLOC", "huge")
    with pytest.raises(ValueError, match="DWA_CORE_MALLOC: must be unset or 'default', got 'huge'"):
        allocator.keep_freed_memory()
    run = subprocess.run([sys.executable, "-m", "dwa_core", "run", "--help"], capture_output=True, text=True,
                         env={**os.environ, "DWA_CORE_MALLOC": "huge"})
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == ["error: DWA_CORE_MALLOC: must be unset or 'default', got 'huge'"]
