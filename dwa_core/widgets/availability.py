"""Which benchmarks have their data here, by the data module's own discovery (`sources.find`,
never downloading): the benchmark dropdown's labels ('mixture (data missing)'), the explorer's
profile fallback and the message that says where to put the files."""

from __future__ import annotations

from dwa_core.data import paper, sources
from dwa_core.profiles import PROFILES

# The datasets each benchmark reads (dwa_core/data: paper.py, fmnist.py); split-digits and
# permuted-digits use scikit-learn's digits, shipped with scikit-learn.
NEEDS = {"mnist2": ("mnist",), "pmnist": ("mnist",), "cifar": ("cifar10", "cifar100"),
         "mixture": paper.MIXTURE, "split-fmnist": ("fashion_mnist",), "permuted-fmnist": ("fashion_mnist",),
         "mixture-offline": ("fashion_mnist",), "split-digits": (), "permuted-digits": ()}


def missing(benchmark: str, data_dir=None) -> list[str]:
    """The datasets of `benchmark` that `sources.find` does not find under `data_dir` (or the
    default places); [] when all are there (or the benchmark is not in NEEDS)."""
    out = []
    for name in NEEDS.get(benchmark, ()):
        try:
            sources.find(name, data_dir)
        except FileNotFoundError:
            out.append(name)
    return out


def dropdown_options(names: list[str], data_dir=None) -> list[tuple[str, str]]:
    """[(label, name)]: a benchmark whose data is missing is labelled 'NAME (data missing)'."""
    return [(f"{n} (data missing)" if missing(n, data_dir) else n, n) for n in names]


def where_to_put(data_dir=None) -> str:
    """One sentence: where the files go and how to point the explorer elsewhere."""
    root = data_dir or sources.default_data_dir()
    return (f"put the files under {root}, or set data_dir "
            f"(the notebook's data_dir parameter, Explorer(data_dir=...)) to where they are")


def usable_profile(profile: str, data_dir=None) -> tuple[str, str]:
    """(the profile to use, a one-line note when it is not `profile`): a profile whose benchmark's
    data is missing falls back to "smoke" (offline data)."""
    if profile not in PROFILES:
        raise ValueError(f"profile: must be one of {', '.join(PROFILES)}, got {profile!r}")
    bench = PROFILES[profile]["benchmark"]
    lacking = missing(bench, data_dir)
    if not lacking:
        return profile, ""
    return "smoke", (f"profile {profile!r} needs the {bench} data ({', '.join(lacking)} not found; "
                     f"{where_to_put(data_dir)}): showing the smoke settings")
