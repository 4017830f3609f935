"""Compiled CPU kernels, built on first use with the system's C compiler and cached. (The CUDA
path is in this package too: `ops` (torch.library operators), `triton_rank_one` (their Triton
kernels), `formula` (the same maths as tensor expressions); see ops.py.)

`rank_one.c` holds the fused rank-1 masked linear layer of DWA, the reduction of its mask losses
and its per-sample Fisher, the backward of a full mask's loss statistics and, for numerics 5, a full
mask's tanh and its product with the weight (apart, or in one pass); `linear_forward`,
`linear_backward`, `mask_sum_forward`, `mask_sum_backward`, `fisher`, `mask_terms_backward`,
`full_tanh(_backward)`, `full_product(_backward)` and `full_tanh_product(_backward)` run them on
float32 CPU tensors, splitting the output rows (or samples, or mask entries) into a fixed number of
ranges (`ROW_RANGES`, so that the sums over rows, and hence the results, do not depend on the thread
count) run on `torch.get_num_threads()` threads. Built with OpenMP (the first
flag set), the ranges run on PyTorch's own OpenMP threads: a second pool would compete with PyTorch's
intra-op threads, which spin for a while after each op (measured: `benchmarks/profile_dwa.py`).
Without OpenMP, a Python thread pool runs them (the C calls release the GIL). `applies(...)` says
whether the kernels can be used; `unavailable_reason()` why not; `parallel()` whether they run on
OpenMP. Nothing here is required: the masked layers fall back to their PyTorch formulation. The
build is keyed by the source, the compiler, the flags and the CPU, so a cache shared between
machines never loads a wrong binary; a build that compiles but does not load (an OpenMP runtime
older than the compiler's, say) gives way to the next flag set.

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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from dwa_core import numerics

SOURCE = Path(__file__).with_name("rank_one.c")
GATE_CODES = {"tanh": 0, "sigmoid": 1}  # the enums of rank_one.c
TANH_EXP2 = 2  # tanh under numerics 5 (rank_one.c's tanh_exp2, with the four-row layer passes)
PHI_CODES = {"abs": 0, "relu": 1}
# Tried in order; the first that compiles and loads wins. -fopenmp: the range runners share PyTorch's
# OpenMP threads (its libgomp.so.1 is already loaded); -fopenmp-simd honours the `omp simd` pragmas
# alone (no OpenMP runtime); -ffinite-math-only and -fno-trapping-math let the selects and fmaxf
# vectorise; on CPUs with AVX-512, GCC's -march=native still prefers 256-bit vectors unless told
# otherwise (512-bit: about 25 % faster here, benchmarks/bench_dwa.py). The per-row code is the same
# with -fopenmp and -fopenmp-simd (checked bit for bit on the 2048x2048 layer).
# -fschedule-insns -fsched-pressure: GCC's instruction scheduling before register allocation, off by
# default on x86. It interleaves the long dependency chains of the four rows' tanh, and the layer's
# backward runs about 8 % faster here (forward unchanged); it moves instructions, not arithmetic, so
# the results are the same bits (checked on four DWA AlexNet steps and the Fisher kernels). A
# compiler that refuses the options gets the next flag set.
_SIMD = ("-O3", "-fopenmp-simd", "-ffinite-math-only", "-fno-trapping-math")
_WIDE = ("-march=native", "-mprefer-vector-width=512")
_SCHEDULE = ("-fschedule-insns", "-fsched-pressure")
_OPENMP = ("-O3", "-fopenmp", *_SIMD[2:], *_WIDE)
FLAG_SETS = ((*_OPENMP, *_SCHEDULE), _OPENMP, (*_SIMD, *_WIDE), (*_SIMD, "-march=native"), _SIMD, ("-O3",))
# Row ranges of every kernel call, whatever the thread count: a sum over rows (dx, dv) is summed
# range by range in a fixed order, so the result is the same on 1 thread or 16.
ROW_RANGES = 16
_state: dict = {}


def cache_dir() -> Path:
    return Path(os.environ.get("DWA_CORE_KERNEL_DIR", Path.home() / ".cache" / "dwa_core" / "kernels"))


def _cpu_id() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return "".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags"))}))


def _builds(compiler: str) -> Iterator[tuple[Path | None, str]]:
    """Compile SOURCE into the cache with each flag set in turn (atomically: concurrent processes may
    race), yielding (path, "") for each build that exists or compiles, and at the end (None, log)."""
    source, log = SOURCE.read_bytes(), []
    for flags in FLAG_SETS:
        key = hashlib.sha256(b"\0".join([source, compiler.encode(), " ".join(flags).encode(),
                                         platform.machine().encode(), _cpu_id().encode()])).hexdigest()[:16]
        target = cache_dir() / f"rank_one-{key}.so"
        if target.exists():
            yield target, ""
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            out = Path(tmp) / target.name
            run = subprocess.run([compiler, *flags, "-fPIC", "-shared", str(SOURCE), "-o", str(out)],
                                 capture_output=True, text=True)
            if run.returncode == 0:
                os.replace(out, target)
                yield target, ""
                continue
            log.append(f"{compiler} {' '.join(flags)}: {run.stderr.strip()[:300]}")
    yield None, "\n".join(log)


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    i64, ptr, c_int = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    ranges = [i64, i64, ptr, c_int]  # first, count, bounds, threads
    shape = [i64, i64, i64]  # B, O, I
    signatures = {"rank_one_forward_ranges": [*ranges, *shape, ptr, ptr, ptr, ptr, c_int, ptr, ptr, ptr, ptr],
                  "rank_one_backward_ranges": [*ranges, i64, *shape, ptr, ptr, ptr, ptr, ptr, ptr, c_int, ptr,
                                               ptr, ptr, ptr, ptr, ptr],
                  "rank_one_fisher_ranges": [*ranges, i64, *shape, ptr, ptr, ptr, ptr, ptr, c_int, ptr, ptr],
                  "rank_one_sum_forward_ranges": [*ranges, *shape, ptr, ptr, ptr, i64, c_int, c_int, ptr],
                  "rank_one_sum_backward_ranges": [*ranges, i64, *shape, ptr, ptr, ptr, i64, c_int, c_int,
                                                   ptr, ptr, ptr],
                  "mask_terms_backward_ranges": [*ranges, i64, ptr, ptr, ptr, ptr, ptr],
                  "full_tanh_ranges": [*ranges, i64, ptr, ptr, c_int, ptr],
                  "full_tanh_backward_ranges": [*ranges, i64, i64, ptr, ptr, ptr, ptr],
                  "full_product_ranges": [*ranges, i64, ptr, ptr, ptr, ptr, ptr, ptr],
                  "full_product_backward_ranges": [*ranges, i64, i64, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr],
                  "full_tanh_product_ranges": [*ranges, i64, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr],
                  "full_tanh_product_backward_ranges": [*ranges, i64, i64, *[ptr] * 9]}
    for name, argtypes in signatures.items():
        getattr(lib, name).argtypes, getattr(lib, name).restype = argtypes, None
    lib.rank_one_parallel.argtypes, lib.rank_one_parallel.restype = [], c_int
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
            failures = []
            for path, log in _builds(compiler):
                if path is None:
                    _state["reason"] = "\n".join(failures) or f"compilation failed:\n{log}"
                    break
                try:
                    _state["lib"] = _declare(ctypes.CDLL(str(path)))
                    break
                except (OSError, AttributeError) as err:  # AttributeError: a function missing
                    failures.append(f"cannot load {path}: {err}")
    return _state["lib"]


def parallel() -> bool:
    """Whether the loaded kernels run their row ranges on PyTorch's OpenMP threads (else on a Python
    thread pool); False when there are no kernels."""
    lib = rank_one()
    return bool(lib is not None and lib.rank_one_parallel())


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


def _ptr(t: torch.Tensor | None) -> int | None:
    if t is None:
        return None
    assert t.is_contiguous() and t.dtype == torch.float32
    return t.data_ptr()


def _pool() -> ThreadPoolExecutor:
    """torch.get_num_threads() workers; rebuilt after a fork (a child inherits no threads) or a change."""
    key = (os.getpid(), threads := torch.get_num_threads())
    if _state.get("pool_key") != key:
        _state["pool"], _state["pool_key"] = ThreadPoolExecutor(threads, thread_name_prefix="dwa-kernel"), key
    return _state["pool"]


def _parts(n_rows: int) -> int:
    """The number of row ranges: ROW_RANGES (fewer only for fewer rows), not the thread count."""
    return max(1, min(ROW_RANGES, n_rows))


def _over_rows(name: str, n_rows: int, *args) -> None:
    """Run kernel `name` (rank_one.c's `name`_ranges) over `_parts(n_rows)` contiguous row ranges on
    torch.get_num_threads() threads: in one call on OpenMP when the build has it, else one range per
    call on a Python thread pool. `args` follow the range arguments (callers that sum over rows pass
    the stride between the ranges' partial arrays first)."""
    lib, parts, threads = rank_one(), _parts(n_rows), torch.get_num_threads()
    bounds = (ctypes.c_int64 * (parts + 1))(*[n_rows * i // parts for i in range(parts + 1)])
    fn = getattr(lib, f"{name}_ranges")
    if threads == 1 or lib.rank_one_parallel():
        fn(0, parts, bounds, threads, *args)
        return
    for future in [_pool().submit(fn, i, 1, bounds, 1, *args) for i in range(parts)]:
        future.result()


def gate_code(gate: str) -> int:
    """rank_one.c's code of `gate` under this process's numerics (dwa_core/numerics.py): under 5,
    tanh is tanh_exp2 and the layer takes four output rows per pass."""
    if gate == "tanh" and numerics.VERSION >= 5:
        return TANH_EXP2
    return GATE_CODES[gate]


def linear_forward(x, weight, u, v, gate: str, relu_weight=None) -> tuple[torch.Tensor, ...]:
    """(y, s) with y_b = (W ⊙ gate(u_b v_bᵀ)) x_b (B, O) and s_b = Σ|gate(u_b v_bᵀ)| (B,); W (O, I),
    u (B, O), v (B, I). With relu_weight f (O, I): (y, s, r), r_b = Σ f ⊙ relu(gate(u_b v_bᵀ)) (B,)
    (paper Eq. 5's plasticity term, without η), computed in the same pass."""
    (batch, n_in), n_out = x.shape, weight.shape[0]
    y, abs_rows = x.new_empty(batch, n_out), x.new_empty(batch, n_out)
    relu_rows = None if relu_weight is None else x.new_empty(batch, n_out)
    _over_rows("rank_one_forward", n_out, batch, n_out, n_in, _ptr(x), _ptr(weight), _ptr(u), _ptr(v),
               gate_code(gate), _ptr(y), _ptr(abs_rows), _ptr(relu_weight), _ptr(relu_rows))
    if relu_rows is None:
        return y, abs_rows.sum(1)
    return y, abs_rows.sum(1), relu_rows.sum(1)


def linear_backward(x, weight, u, v, gy, gs, gate: str, relu_weight=None,
                    gr=None) -> tuple[torch.Tensor, ...]:
    """(dx, dW, du, dv) of `linear_forward` given gy (B, O), gs (B,) and, with relu_weight, gr (B,)."""
    (batch, n_in), n_out = x.shape, weight.shape[0]
    gw, gu = torch.empty_like(weight), torch.empty_like(u)  # the kernel zeroes dW and the partials
    partial = x.new_empty(_parts(n_out), 2, batch, n_in)  # dx and dv of each row range
    _over_rows("rank_one_backward", n_out, partial.stride(0), batch, n_out, n_in, _ptr(x), _ptr(weight),
               _ptr(u), _ptr(v), _ptr(gy), _ptr(gs), gate_code(gate), _ptr(gw), _ptr(gu),
               _ptr(partial[0, 0]), _ptr(partial[0, 1]), _ptr(relu_weight), _ptr(gr))
    # dx and dv as two tensors (not views of one): torch.library's operators may not alias outputs
    return partial[:, 0].sum(0), gw, gu, partial[:, 1].sum(0)


def fisher(x, weight, u, v, gy, gate: str, fisher_sum, need_dx: bool) -> torch.Tensor | None:
    """Adds Σ_b (H_b ⊙ gy_b x_bᵀ)² into fisher_sum (O, I) in place, H_b = gate(u_b v_bᵀ); returns
    dx = ((W ⊙ H_b)ᵀ gy_b)_b (B, I) if need_dx, else None. x (B, I), u (B, O), v (B, I), gy (B, O)."""
    (batch, n_in), n_out = x.shape, weight.shape[0]
    x2 = x.square()
    partial = x.new_empty(_parts(n_out), batch, n_in) if need_dx else None  # dx of each row range
    _over_rows("rank_one_fisher", n_out, partial.stride(0) if need_dx else 0, batch, n_out, n_in, _ptr(x2),
               _ptr(weight) if need_dx else None, _ptr(u), _ptr(v), _ptr(gy), gate_code(gate),
               _ptr(fisher_sum), _ptr(partial[0]) if need_dx else None)
    return partial.sum(0) if need_dx else None


def mask_sum_forward(u, v, w, gate: str, kind: str) -> torch.Tensor:
    """(B,) Σ_i w_i φ(gate(u_b v_bᵀ))_i, φ = |.| or relu; w (O, I) or None (ones)."""
    (batch, n_u), n_v = u.shape, v.shape[1]
    w, stride = (u.new_ones(n_v), 0) if w is None else (w, n_v)
    rows = u.new_empty(batch, n_u)
    _over_rows("rank_one_sum_forward", n_u, batch, n_u, n_v, _ptr(u), _ptr(v), _ptr(w), stride,
               gate_code(gate), PHI_CODES[kind], _ptr(rows))
    return rows.sum(1)


def mask_sum_backward(u, v, w, gate: str, kind: str, gs) -> tuple[torch.Tensor, torch.Tensor]:
    """(du, dv) of `mask_sum_forward` given gs (B,)."""
    (batch, n_u), n_v = u.shape, v.shape[1]
    w, stride = (u.new_ones(n_v), 0) if w is None else (w, n_v)
    gu, partial = torch.empty_like(u), u.new_empty(_parts(n_u), batch, n_v)
    _over_rows("rank_one_sum_backward", n_u, partial.stride(0), batch, n_u, n_v, _ptr(u), _ptr(v), _ptr(w),
               stride, gate_code(gate), PHI_CODES[kind], _ptr(gs), _ptr(gu), _ptr(partial[0]))
    return gu, partial.sum(0)


def mask_terms_backward(h, f, gs, gr) -> torch.Tensor:
    """dH (B, n) of a full mask's statistics s_b = Σ_i |H_bi| and r_b = Σ_i f_i relu(H_bi), given
    their gradients gs (B,) and gr (B,), either None (that statistic unused): sign(H) gs_b +
    [H > 0] gr_b f, bit for bit as autograd computes it from vector_norm and relu(H) @ f. h (B, n),
    f (n,) or None."""
    batch, n = h.shape
    dh = torch.empty_like(h)
    _over_rows("mask_terms_backward", batch, n, _ptr(h), _ptr(f), _ptr(gs), _ptr(gr), _ptr(dh))
    return dh


def full_tanh(z: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """H = tanh(Z + bias) elementwise by rank_one.c's tanh (the rank-1 kernels' own under this
    process's numerics: tanh_f under 3, tanh_exp2 under 5, where the full masks use it); z (B, n)
    contiguous, bias (n,) contiguous or None."""
    h = torch.empty_like(z)
    _over_rows("full_tanh", z.shape[0], z.shape[1], _ptr(z), _ptr(bias), gate_code("tanh"), _ptr(h))
    return h


def full_tanh_backward(h: torch.Tensor, dh: torch.Tensor,
                       with_bias: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(dZ, dbias) of `full_tanh`: dZ = dH ⊙ (1 - H²) (B, n) and, with_bias, dbias = Σ_b dZ_b (n,)
    summed over b in order (else None); h, dh (B, n) contiguous."""
    batch, n = h.shape
    dz, db = torch.empty_like(h), (h.new_empty(n) if with_bias else None)
    _over_rows("full_tanh_backward", n, batch, n, _ptr(h), _ptr(dh), _ptr(dz), _ptr(db))
    return dz, db


def full_product(h: torch.Tensor, weight: torch.Tensor, f: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    """(W ⊙ H (B, n), s (B,), r (B,) or None) for a full mask H (B, n) and a weight W (n,):
    s_b = Σ_i |H_bi| and, with f (n,), r_b = Σ_i f_i relu(H_bi), in one pass over H."""
    batch, n = h.shape
    wh, abs_sum = torch.empty_like(h), h.new_empty(batch)
    relu_sum = None if f is None else h.new_empty(batch)
    _over_rows("full_product", batch, n, _ptr(h), _ptr(weight), _ptr(f), _ptr(wh), _ptr(abs_sum),
               _ptr(relu_sum))
    return wh, abs_sum, relu_sum


def full_product_backward(h, weight, f, g_wh, gs, gr) -> tuple[torch.Tensor, torch.Tensor]:
    """(dH (B, n), dW (n,)) of `full_product` given the gradients g_wh (B, n) of W ⊙ H, gs (B,) of s
    and gr (B,) of r (gs, gr: None when unused): dH = g_wh ⊙ W + sign(H) gs_b + [H > 0] gr_b f,
    dW = Σ_b g_wh_b ⊙ H_b (summed over b in order)."""
    batch, n = h.shape
    dh, dw = torch.empty_like(h), torch.empty_like(weight)
    _over_rows("full_product_backward", n, batch, n, _ptr(h), _ptr(weight), _ptr(f), _ptr(g_wh), _ptr(gs),
               _ptr(gr), _ptr(dh), _ptr(dw))
    return dh, dw


def full_tanh_product(z: torch.Tensor, bias: torch.Tensor | None, weight: torch.Tensor,
                      f: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    """(H, W ⊙ H, s, r or None) in one pass: `full_tanh(z, bias)` then `full_product(H, weight, f)`,
    the same bits, without H going to memory and back. Numerics 5 only (tanh_exp2). z (B, n)
    contiguous, bias, weight, f (n,) contiguous (bias, f: or None)."""
    batch, n = z.shape
    h, wh, abs_sum = torch.empty_like(z), torch.empty_like(z), z.new_empty(batch)
    relu_sum = None if f is None else z.new_empty(batch)
    _over_rows("full_tanh_product", batch, n, _ptr(z), _ptr(bias), _ptr(weight), _ptr(f), _ptr(h), _ptr(wh),
               _ptr(abs_sum), _ptr(relu_sum))
    return h, wh, abs_sum, relu_sum


def full_tanh_product_backward(h, weight, f, g_wh, gs, gr,
                               with_bias: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(dZ (B, n), dW (n,), dbias (n,) or None) of `full_tanh_product`: `full_product_backward`'s dH
    (not stored) through `full_tanh_backward`, the same bits; gs, gr as there."""
    batch, n = h.shape
    dz, dw = torch.empty_like(h), torch.empty_like(weight)
    db = h.new_empty(n) if with_bias else None
    _over_rows("full_tanh_product_backward", n, batch, n, _ptr(h), _ptr(weight), _ptr(f), _ptr(g_wh), _ptr(gs),
               _ptr(gr), _ptr(dz), _ptr(dw), _ptr(db))
    return dz, dw, db


def unavailable_reason() -> str | None:
    rank_one()
    return _state["reason"]
