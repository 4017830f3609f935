"""Seconds to build each offline benchmark with an empty cache (decodes the files) and again from
the cache; the memory the paper's full mixture takes as uint8 vs float32
(docs/original-code.md#benchmarks counts).

    python benchmarks/bench_data.py [--data-dir DIR]   (default: a fresh temporary directory)
"""

from __future__ import annotations

import argparse
import tempfile
import time

from dwa_core.data import get_spec

OFFLINE = ("split-fmnist", "permuted-fmnist", "mixture-offline", "split-digits")
# §8.4: (train, test) images per mixture dataset (FaceScrub / notMNIST: the HAT packaging's counts)
MIXTURE_COUNTS = {"cifar10": (50000, 10000), "cifar100": (50000, 10000), "mnist": (60000, 10000),
                  "svhn": (73257, 26032), "fashion_mnist": (60000, 10000), "traffic_signs": (39209, 12630),
                  "facescrub": (20600, 2289), "not_mnist": (16853, 1873)}
GREY = {"mnist": 28 * 28, "fashion_mnist": 28 * 28, "not_mnist": 32 * 32}  # stored 1-channel


def timed_build(name: str, data_dir: str) -> float:
    spec = get_spec(name)
    start = time.perf_counter()
    spec.build(spec.Params(), seed=0, data_dir=data_dir)
    return time.perf_counter() - start


def mixture_memory() -> dict[str, float]:
    """GiB of all mixture images (train + test): stored uint8, uint8 at 3x32x32, float32 at 3x32x32."""
    images = sum(a + b for a, b in MIXTURE_COUNTS.values())
    stored = sum((a + b) * GREY.get(n, 3 * 32 * 32) for n, (a, b) in MIXTURE_COUNTS.items())
    gib = 1024 ** 3
    return {"images": images, "uint8 as stored": stored / gib, "uint8 3x32x32": images * 3072 / gib,
            "float32 3x32x32": images * 3072 * 4 / gib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="dwa_bench_data_")
    print(f"data dir (cache under it): {data_dir}")
    print(f"{'benchmark':<18}{'build (s)':>12}{'reload (s)':>12}")
    for name in OFFLINE:
        first, again = timed_build(name, data_dir), timed_build(name, data_dir)
        print(f"{name:<18}{first:>12.2f}{again:>12.2f}")
    memory = mixture_memory()
    print(f"full mixture: {memory.pop('images'):,} images (train + test, 8 datasets)")
    for kind, value in memory.items():
        print(f"  {kind:<18}{value:>8.2f} GiB")


if __name__ == "__main__":
    main()
