"""Keep freed memory for reuse in the processes that dwa_core runs to train.

glibc's malloc hands every block above its mmap threshold (adjusted as blocks are freed, at most
32 MiB) back to the OS when it is freed, so a tensor of that size made at every training step is
faulted in again, page by page, at every step. The DWA AlexNet makes several per step: the
gradients of its conv-mask generators (52 and 29 MB) and its (B, n) masks. Measured on the 2-core CPU
here, that is 17,000 to 31,000 minor page faults per DWA AlexNet step, several per cent of its time
(`benchmarks/profile_dwa.py` times steps with and without this setting). `keep_freed_memory()`
raises the threshold to 256 MiB, so such blocks come from malloc's heap, and lets malloc keep up to
1 GiB of freed memory there, so the next step reuses the pages. Blocks of 256 MiB and more are still
mapped and unmapped: with no threshold at all, the reference formulation of the DWA layers (512 MiB
per-sample weights) fragmented the heap to 9.7 GB of peak memory instead of 5.4 GB.

dwa_core calls it in the processes it owns: the program (`python -m dwa_core`) and the workers of a
local sweep. `import dwa_core` does not (a notebook's kernel keeps its allocator as it is; it may call
`keep_freed_memory()` itself). `DWA_CORE_MALLOC=default` leaves malloc alone everywhere. No number
changes: where a tensor lives does not change what is computed (DWA AlexNet training steps were
checked bit for bit with and without it).
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_BYTES = 256 << 20
KEEP_BYTES = 1 << 30  # freed memory kept at the top of the heap before it is returned to the OS


def check_mode() -> str:
    """DWA_CORE_MALLOC's value, "" (unset) or "default"; ValueError (one line) for anything else."""
    mode = os.environ.get("DWA_CORE_MALLOC", "")
    if mode not in ("", "default"):
        raise ValueError(f"DWA_CORE_MALLOC: must be unset or 'default', got {mode!r}")
    return mode


def keep_freed_memory() -> bool:
    """Set glibc malloc's M_MMAP_THRESHOLD to 256 MiB and M_TRIM_THRESHOLD to 1 GiB for this process
    (see the module). Returns whether it did: False off glibc (macOS, musl), or with
    DWA_CORE_MALLOC=default. Raises ValueError when DWA_CORE_MALLOC has another value (`check_mode`)."""
    if check_mode() == "default" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(libc.mallopt(M_TRIM_THRESHOLD,
                                                                                KEEP_BYTES))
    except (OSError, AttributeError):
        return False
