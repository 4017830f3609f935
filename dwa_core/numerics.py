"""The identity of the code that computes a run's numbers: an explicit numerics `VERSION`, guarded by
a digest of the numerically relevant source files.

Every run records `identity()` (results.json `numerics`), `ExperimentConfig.key()` includes
`VERSION` (so a run of other numerics lives in another folder), a finished run or a checkpoint of
other numerics is never reused (`runs.is_finished`, `experiment.restore_checkpoint`), aggregation skips such
runs with a warning, and the comparison data files (tables/*.json) record the version they were
computed with (`compare --from-data` warns when it is not the code's).

Why an explicit version guarded by a digest, rather than the raw digest as the identity: a raw hash
of the sources would invalidate every finished run on any edit of those files, even a pure refactor
whose numbers were verified identical, and people would learn to work around it. Here the digest
only forces a decision: `tests/test_numerics.py` fails when the sources differ from
`SOURCE_DIGEST`; whoever changed them bumps `VERSION` when numbers can change (every run is then
recomputed) and, in either case, sets `SOURCE_DIGEST` to the new digest (`python -m
dwa_core.numerics` prints it). Python files are hashed from their syntax tree (`ast`, docstrings
removed, written back with `ast.unparse`), so comments, docstrings and formatting do not count at
all; other sources (the C kernel) are hashed as text.

Only `VERSION` decides whether two runs have the same numerics; the package version is recorded
beside it for the reader (a release that leaves the numerics alone does not invalidate runs).

More than one numerics can be selectable (`SELECTABLE`): `DWA_CORE_NUMERICS=<version>` in the
environment selects one for a process and its workers, whose runs, folders and data files then
record it; without it `VERSION` is `DEFAULT`, the numerics of every committed data file. A next
numerics lands selectable before the committed data files are remade with it (a few CPU hours,
`DWA_CORE_NUMERICS=<next> python scripts/regenerate.py --run`), and becomes `DEFAULT` once they all
are; the previous default stays selectable, so the benchmarks can time both back to back (`other()`)
and its runs can be reproduced. What each version changes is listed at its number below.
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# 3: DWA only (the other approaches' numbers are those of 2): the fused kernels sum over fixed row
#    ranges (results independent of the thread count) with 512-bit vectors, compute the plasticity
#    term in the layer's pass; full masks' loss terms reduce in another order; DWA's per-sample
#    Fisher is batched (one backward per batch), equal to the loop's to float rounding.
# 4: withdrawn before it became the default; never selectable again. It was the next numerics on
#    main (DWA_CORE_NUMERICS=4): a full (conv) mask's tanh, product with the weight and loss
#    statistics as C passes (and, for a while, a rational tanh, dropped: within 1e-6 of tanh, but its
#    1 - H² was biased by up to +35 % in saturation, and DWA's permuted-fmnist score fell from 0.38
#    to 0.20 with it). Its numbers changed again after it had landed, so what follows is 5: a run
#    recorded under 4 is of code that no longer exists, and is refused like any other version.
# 5 (the default since every committed data file was remade with it; DWA only, on the CPU): 4's
#    full-mask C passes, whose tanh now adds the generator's bias (no longer in its matrix product)
#    and sums its gradient; the C kernels' tanh computed through 2^x with a degree-5 polynomial
#    (rank_one.c's tanh_exp2: the same formula, within 2.5e-7 of tanh, 1 - H² as 3's in
#    saturation); the rank-1 layer's forward and backward four output rows per pass (dx and dv sum
#    in another order). DWA's results under 5 against those under 3, seed by seed:
#    benchmarks/numerics_check.py. 3 stays selectable (DWA_CORE_NUMERICS=3): the benchmarks time it
#    beside 5, and runs of it can be reproduced.
DEFAULT = 5
SELECTABLE = (3, 5)
ENV = "DWA_CORE_NUMERICS"


def selected(environ=os.environ) -> int:
    """DEFAULT, or the version named by the DWA_CORE_NUMERICS variable of `environ` (one of
    SELECTABLE). Raises ValueError for any other value."""
    value = environ.get(ENV, "").strip()
    if not value:
        return DEFAULT
    if value not in {str(v) for v in SELECTABLE}:
        raise ValueError(f"{ENV}: must be one of {', '.join(map(str, SELECTABLE))}, got {value!r}")
    return int(value)


def other() -> int:
    """The selectable version that is not this process's, which the benchmarks measure beside it (the
    previous numerics while the default runs: what 5 changed; a next one, while it is not yet the
    default: what it will change)."""
    return next(v for v in SELECTABLE if v != VERSION)


@contextmanager
def using(version: int) -> Iterator[None]:
    """Compute under `version` (one of SELECTABLE) inside the block, in this process: what the
    benchmarks use to time both numerics back to back. Runs started inside record it. Raises
    ValueError for another version."""
    global VERSION
    if version not in SELECTABLE:
        raise ValueError(f"numerics version: must be one of {', '.join(map(str, SELECTABLE))}, got {version!r}")
    saved, VERSION = VERSION, version
    try:
        yield
    finally:
        VERSION = saved


def check_selection() -> None:
    """Raise ValueError (one line) when DWA_CORE_NUMERICS names no version: the command line and
    run_experiment call it before any training (importing the package does not raise, so the
    error is reported as a bad input, not a traceback)."""
    selected()


try:
    VERSION = selected()
except ValueError:  # reported by check_selection before anything is computed
    VERSION = DEFAULT
# Digest renewed within 3, no bump: models.params_for_family (which network params a reference run
# keeps) computes no number; DWA's Fisher pass leaves out the fused plasticity term, which leaves
# the layers' outputs bit for bit (tests/test_dwa_fisher.py); models._variant_options (one lookup for
# the network-param checks) computes no number.
# Renewed again within 3: the C kernels' row ranges run on PyTorch's OpenMP threads (range runners in
# rank_one.c); the per-row code and the ranges are unchanged, and the outputs of every kernel and of
# eight DWA AlexNet training steps were checked bit for bit against the previous build.
# And again: a full mask's loss statistics are computed by the layer (masked.full_mask_terms) with
# the losses' own formulas, and their backward is one C pass with autograd's bits
# (tests/test_kernels.py::test_full_mask_terms_give_autograds_bits; eight DWA AlexNet steps, with the
# sparsity term active and not, hash as before).
# Then: full_mask_terms refuses a plasticity weight of another shape, as its rank-1 twin does (an
# error, no number).
# Then numerics 4 landed beside 3 (selected by DWA_CORE_NUMERICS, see above): under 3 the bits are
# unchanged (four DWA AlexNet training steps, and the Fisher and mask-sum kernels on the DWA MLP and
# AlexNet, hashed against the previous build); the kernels now zero dW's rows and their partial
# sums in their own pass instead of the caller beforehand (the same zeros).
# Then numerics 4's tanh became a [9/6] rational (from [13/6]: two fewer multiply-adds per entry):
# no committed file had its numbers yet, so 4 stays 4; 3's bits unchanged.
# Then: the plasticity weight's checks, shared by full_mask_terms and full_mask_product (one helper,
# the same tensors; no number changes).
# Then numerics 4 without the rational tanh (see 4 above; no committed file had its numbers).
# Then: rank_one.c's gate dispatch written back as before the rational tanh (two gates); numerics 3
# and 4 hash as before (four DWA AlexNet steps under each; the Fisher and mask-sum kernels).
# Then tanh_exp2, the four-row layer passes and the generator's bias in the full masks' tanh pass,
# first as 4, then, since 4 had landed (runs of it may exist), as 5, 4 withdrawn (see above);
# numerics 3 hashes as before (the same two checks).
# Then rank_one.c's full-mask tanh pass written as one loop per bias case over a literal gate (the
# same arithmetic: numerics 3 and 5 hash as before).
# Then the kernels' first flag set gains GCC's scheduling before register allocation (-fschedule-insns
# -fsched-pressure): instructions move, the arithmetic does not (four DWA AlexNet steps, and the
# Fisher and mask-sum kernels, hash as before under 3 and 5).
# Then the four-row forward sums |H| as -tanh_exp2_neg (s - x is s + (-x) in IEEE arithmetic, and
# copysignf drops the negation tanh_exp2 had): the same bits (the same two checks under 3 and 5).
# Then the Fisher kernel takes a sample's active rows four at a time (x² and v read once for four
# rows; each sum keeps its order): the same bits (the Fisher and mask-sum kernels on the DWA MLP and
# AlexNet hash as before under 3 and 5, and equal the previous build on random 800x800 data).
# Then, under 5, a full mask's tanh and its product with the weight run in one C pass each way
# (masked._FullTanhProduct: the generator hands the layer its pre-activation): the same bits (every
# output of the two passes equals the separate kernels' on random data; four DWA AlexNet steps, the
# Fisher and mask-sum kernels, and three steps whose loss also reads the full masks' H directly hash
# as before under 3 and 5).
# Then the one-pass backward is the product's backward pass through the tanh (one row function with a
# literal flag, not a second copy): the same bits (the same checks, and the kernels' outputs equal the
# previous build's on random data) and the same speed.
SOURCE_DIGEST = "e8ef1403f9ade8071f9831628a63bc03da2f4412f19b5f8c6f9716aeaa7d9039"

PACKAGE = Path(__file__).resolve().parent
# What computes the numbers: the approaches and their maths, the networks (kernels included), the
# data, the curriculum, the task loop (loop.py, experiment.py), the metrics, and the config and its
# field declarations and typing (defaults and coercion change numbers).
SOURCES = ("approaches", "functional", "models", "data", "curriculum.py", "experiment.py", "loop.py",
           "metrics.py", "config.py", "coerce.py", "fields.py")
TEXT_SUFFIXES = (".c", ".h", ".cpp", ".cu")


def identity() -> dict:
    """What a run records: {"version": VERSION, "package": dwa_core.__version__}."""
    from dwa_core import __version__

    return {"version": VERSION, "package": __version__}


def mismatch(recorded: dict | None) -> str | None:
    """None when `recorded` (a results' or data file's `numerics`, None or {} when it has none) has
    this code's VERSION, else what changed as one phrase: "numerics version 1 -> 2" (or "unknown -> 2")."""
    version = (recorded or {}).get("version")
    if version == VERSION:
        return None
    return f"numerics version {'unknown' if version is None else version} -> {VERSION}"


def source_files(root: Path = PACKAGE) -> list[Path]:
    """The numerically relevant files under the package folder `root`, sorted by relative path:
    every .py (and C/CUDA source) of SOURCES' folders, and SOURCES' single files."""
    files = []
    for name in SOURCES:
        path = root / name
        if path.is_dir():
            files += [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                      and (p.suffix == ".py" or p.suffix in TEXT_SUFFIXES)]
        elif path.is_file():
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def normalized_source(path: Path) -> str:
    """The text that counts in one file: for Python, the syntax tree without docstrings written back
    by ast.unparse (comments and formatting gone); for other sources, the text with "\\n" line ends.
    Raises SyntaxError for a Python file that does not parse."""
    text = Path(path).read_text(encoding="utf-8")
    if Path(path).suffix != ".py":
        return text.replace("\r\n", "\n")
    tree = ast.parse(text, filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def source_digest(root: Path = PACKAGE) -> str:
    """SHA-256 (hex) over every source_files(root) entry: its relative path and normalized_source."""
    digest = hashlib.sha256()
    for path in source_files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(normalized_source(path).encode() + b"\0")
    return digest.hexdigest()


def stale_data_files(root: Path = PACKAGE.parent) -> list[str]:
    """The committed data files that do not record this code's numerics, one line each ("path:
    numerics version 1 -> 2"): every tables/*.json, and every figures/*.json sidecar that carries a
    config (the summary files carry none)."""
    import json

    stale = []
    paths = sorted((root / "tables").glob("*.json")) + sorted((root / "figures").glob("*.json"))
    for path in paths:
        data = json.loads(path.read_text())
        if path.parent.name == "figures" and not (isinstance(data, dict) and "config" in data):
            continue
        problem = mismatch(data.get("numerics") if isinstance(data, dict) else None)
        if problem:
            stale.append(f"{path.relative_to(root).as_posix()}: {problem}")
    return stale


def main() -> int:
    """`python -m dwa_core.numerics`: print the digest of the current sources (and whether it is
    SOURCE_DIGEST)."""
    current = source_digest()
    print(current)
    if current != SOURCE_DIGEST:
        print(f"differs from numerics.SOURCE_DIGEST ({SOURCE_DIGEST}); numerics.VERSION is {VERSION}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
