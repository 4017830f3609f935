"""What a benchmark's JSON file records about the machine it ran on, and the writing of that file.

Every benchmark's absolute figures depend on the machine's load; its ratio (measured back to back in
the same process) much less. `machine()` states the load so a reader can judge the absolute ones."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time


def machine() -> dict:
    """Host facts at the time of the call: `uptime`'s line, the 1/5/15-minute load averages, the
    number of CPUs, torch's thread count and version, and the UTC date."""
    import torch
    try:
        uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:  # no uptime binary: the load averages below still say it
        uptime = ""
    return dict(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), uptime=uptime,
                load=[round(v, 2) for v in os.getloadavg()], cpus=os.cpu_count(),
                threads=torch.get_num_threads(), torch=torch.__version__, python=platform.python_version())


def write_json(path: str | None, data: dict, before: dict | None = None) -> None:
    """Write `data` and the machine's state to `path`: `machine` taken now (after the measurement),
    `machine_before` the `machine()` the benchmark took before it started measuring, and the code's
    numerics identity (dwa_core/numerics.py)."""
    if not path:
        return
    from dwa_core import numerics
    extra = {"machine_before": before} if before else {}
    with open(path, "w") as f:  # every committed tables/*.json records the numerics it was made by
        json.dump({**data, **extra, "machine": machine(), "numerics": numerics.identity()}, f, indent=1)
        f.write("\n")
    print(f"wrote {path}")
