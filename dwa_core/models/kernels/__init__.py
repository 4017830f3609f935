"""Compiled CPU kernels, built on first use with the system's C compiler and cached.

`rank_one()` returns the loaded library of `rank_one.c` (the fused rank-1 masked linear layer), or
None when it cannot be had; `unavailable_reason()` then says why. Nothing here is required: the
masked layers fall back to their PyTorch formulation. The build is keyed by the source, the
compiler, the flags and the CPU, so a cache shared between machines never loads a wrong binary.

    DWA_CORE_KERNELS=0          never build or load (use the PyTorch formulation)
    DWA_CORE_KERNEL_DIR=PATH    where builds are cached (default ~/.cache/dwa_core/kernels)
    CC=...                      the compiler (default cc)
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("rank_one.c")
GATE_CODES = {"tanh": 0, "sigmoid": 1}  # the enums of rank_one.c
PHI_CODES = {"abs": 0, "relu": 1}
# Tried in order; the first that compiles wins (OpenMP threads, then SIMD pragmas only, then plain).
# -ffinite-math-only and -fno-trapping-math let the compiler vectorise the selects and fmaxf.
_MATH = ("-O3", "-ffinite-math-only", "-fno-trapping-math")
FLAG_SETS = ((*_MATH, "-march=native", "-fopenmp"), (*_MATH, "-march=native", "-fopenmp-simd"),
             (*_MATH, "-fopenmp-simd"), ("-O3",))
_state: dict = {}


def cache_dir() -> Path:
    return Path(os.environ.get("DWA_CORE_KERNEL_DIR", Path.home() / ".cache" / "dwa_core" / "kernels"))


def _cpu_id() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return "".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags"))}))


def _build(compiler: str) -> tuple[Path | None, str]:
    """Compile SOURCE into the cache (atomically: concurrent processes may race); (path, log)."""
    source, log = SOURCE.read_bytes(), []
    for flags in FLAG_SETS:
        key = hashlib.sha256(b"\0".join([source, compiler.encode(), " ".join(flags).encode(),
                                         platform.machine().encode(), _cpu_id().encode()])).hexdigest()[:16]
        target = cache_dir() / f"rank_one-{key}.so"
        if target.exists():
            return target, ""
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            out = Path(tmp) / target.name
            run = subprocess.run([compiler, *flags, "-fPIC", "-shared", str(SOURCE), "-o", str(out)],
                                 capture_output=True, text=True)
            if run.returncode == 0:
                os.replace(out, target)
                return target, ""
            log.append(f"{compiler} {' '.join(flags)}: {run.stderr.strip()[:300]}")
    return None, "\n".join(log)


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    i64, ptr, c_int = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    sizes = [i64, i64, i64]  # B, O, I
    signatures = {"rank_one_forward": [*sizes, ptr, ptr, ptr, ptr, c_int, ptr, ptr, c_int],
                  "rank_one_backward": [*sizes, ptr, ptr, ptr, ptr, ptr, ptr, c_int, ptr, ptr, ptr, c_int],
                  "rank_one_sum_forward": [*sizes, ptr, ptr, ptr, i64, c_int, c_int, ptr, c_int],
                  "rank_one_sum_backward": [*sizes, ptr, ptr, ptr, i64, c_int, c_int, ptr, ptr, ptr, c_int]}
    for name, argtypes in signatures.items():
        getattr(lib, name).argtypes, getattr(lib, name).restype = argtypes, None
    return lib


def rank_one() -> ctypes.CDLL | None:
    """The loaded kernel library, built on the first call; None if disabled or unavailable."""
    if "lib" not in _state:
        _state["lib"], _state["reason"] = None, None
        compiler = shutil.which(os.environ.get("CC", "cc"))
        if os.environ.get("DWA_CORE_KERNELS", "1") == "0":
            _state["reason"] = "disabled by DWA_CORE_KERNELS=0"
        elif compiler is None:
            _state["reason"] = f"no C compiler ({os.environ.get('CC', 'cc')!r} not found)"
        else:
            path, log = _build(compiler)
            if path is None:
                _state["reason"] = f"compilation failed:\n{log}"
            else:
                try:
                    _state["lib"] = _declare(ctypes.CDLL(str(path)))
                except OSError as err:
                    _state["reason"] = f"cannot load {path}: {err}"
    return _state["lib"]


def applies(*tensors: torch.Tensor) -> bool:
    """Whether the kernels can take these tensors: all float32 on the CPU, and the library loads.
    Warns (once per call site) when they would apply but cannot be built or loaded."""
    if not all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors):
        return False
    if rank_one() is None and not _state["reason"].startswith("disabled"):
        reason = _state["reason"].splitlines()[0]
        warnings.warn(f"dwa_core: the fused CPU kernels of the masked layers are unavailable, training is "
                      f"several times slower ({reason})", RuntimeWarning, stacklevel=2)
    return rank_one() is not None


def ptr(t: torch.Tensor) -> int:
    """Address of a contiguous tensor's data, for the ctypes calls."""
    assert t.is_contiguous()
    return t.data_ptr()


def unavailable_reason() -> str | None:
    rank_one()
    return _state["reason"]
