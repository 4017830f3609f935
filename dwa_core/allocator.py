"""Memory settings of the processes that dwa_core runs to train: freed memory kept for reuse, and
PyTorch's large CPU tensors on transparent huge pages.

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

`use_huge_pages()` asks PyTorch's CPU allocator to mark every tensor of 2 MiB and more for
transparent huge pages (`madvise`; PyTorch's `THP_MEM_ALLOC_ENABLE`), where the kernel
allows it (`/sys/kernel/mm/transparent_hugepage/enabled` not `never`). The DWA AlexNet streams
about 80 MB of conv-mask generator weights and their gradients through memory at every step; on
2 MiB pages the step took 4-5 % less time here (three alternated pairs of processes, 190-202 ms
against 181-193 ms; `benchmarks/profile_dwa.py` times it with and without), the plain AlexNet's
within its noise.

`for_training()` does both. dwa_core calls it in the processes it owns: the program (`python -m
dwa_core`) and the workers of a local sweep. `import dwa_core` does not (a notebook's kernel keeps
its allocator as it is; it may call `for_training()` itself, before its first large tensor).
`DWA_CORE_MALLOC=default` leaves malloc and the pages alone everywhere; `DWA_CORE_MALLOC=small-pages`
keeps freed memory but leaves the pages alone. No number changes: where a tensor lives does not
change what is computed (DWA AlexNet training steps and the DWA Fisher were checked bit for bit with
and without each setting).
"""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_BYTES = 256 << 20
KEEP_BYTES = 1 << 30  # freed memory kept at the top of the heap before it is returned to the OS
HUGE_PAGE = 2 << 20  # PyTorch marks CPU tensors of this size and more for transparent huge pages
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")
MODES = ("", "default", "small-pages")  # DWA_CORE_MALLOC's values; "" (unset): both settings


def mode() -> str:
    """DWA_CORE_MALLOC's value; ValueError (one line) when it is not one of MODES."""
    mode = os.environ.get("DWA_CORE_MALLOC", "")
    if mode not in MODES:
        raise ValueError(f"DWA_CORE_MALLOC: must be unset, 'default' or 'small-pages', got {mode!r}")
    return mode


def keep_freed_memory() -> bool:
    """Set glibc malloc's M_MMAP_THRESHOLD to 256 MiB and M_TRIM_THRESHOLD to 1 GiB for this process
    (see the module). Returns whether it did: False off glibc (macOS, musl), or with
    DWA_CORE_MALLOC=default."""
    if mode() == "default" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(libc.mallopt(M_TRIM_THRESHOLD,
                                                                                KEEP_BYTES))
    except (OSError, AttributeError):
        return False


def use_huge_pages() -> bool:
    """Put PyTorch's CPU tensors of 2 MiB and more on transparent huge pages for this process (see the
    module). PyTorch reads THP_MEM_ALLOC_ENABLE once, at its first CPU allocation, so a process that
    has allocated before keeps its setting. Returns whether the setting is in effect (a probe
    tensor's mapping is marked for them): False off Linux, when the kernel never gives huge pages, with
    DWA_CORE_MALLOC=default or small-pages, or when PyTorch decided before."""
    import torch

    if mode() or platform.system() != "Linux" or "[never]" in _read(THP_SETTING):
        return False
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    probe = torch.empty(HUGE_PAGE // 4)  # 2 MiB: PyTorch marks it when the setting is in effect
    return huge_page_marked(probe.data_ptr())


def huge_page_marked(address: int) -> bool:
    """Whether the mapping of this process that holds `address` is marked for transparent huge pages
    (`hg` among its VmFlags in /proc/self/smaps); False where smaps cannot be read."""
    inside = False
    for line in _read(Path("/proc/self/smaps"), "").splitlines():
        head = line.split(maxsplit=1)[0]
        if "-" in head and not head.endswith(":"):  # a mapping's first line: start-end perms ...
            start, _, end = head.partition("-")
            inside = int(start, 16) <= address < int(end, 16)
        elif inside and head == "VmFlags:":
            return "hg" in line.split()[1:]
    return False


def _read(path: Path, missing: str = "[never]") -> str:
    try:
        return path.read_text()
    except OSError:
        return missing


def for_training() -> dict[str, bool]:
    """Both settings, as the program and the sweep workers use them: {"keep_freed_memory": bool,
    "huge_pages": bool}, each whether it took effect."""
    return {"keep_freed_memory": keep_freed_memory(), "huge_pages": use_huge_pages()}
