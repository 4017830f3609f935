"""Seconds to build each offline benchmark with an empty cache (decodes the files) and again from
the cache; the memory the paper's full mixture takes as uint8 vs float32
(docs/original-code.md#benchmarks counts).

    python benchmarks/bench_data.py [--data-dir DIR] [--only split-fmnist ...] [--json FILE]
    (--data-dir default: a fresh temporary directory)

The ratio printed, build / reload, is the two timed back to back in one process: how much the cache
saves, comparable on a loaded machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from _machine import machine, write_json

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
    parser.add_argument("--only", nargs="*", default=list(OFFLINE), choices=OFFLINE,
                        help="benchmarks to build")
    parser.add_argument("--json", help="also write the results (and the machine's load) to this file")
    args = parser.parse_args()
    before, rows = machine(), []
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="dwa_bench_data_")
    print(f"data dir (cache under it): {data_dir}")
    print(f"{'benchmark':<18}{'build (s)':>12}{'reload (s)':>12}{'build/reload':>14}")
    for name in args.only:
        first, again = timed_build(name, data_dir), timed_build(name, data_dir)
        print(f"{name:<18}{first:>12.2f}{again:>12.2f}{first / again:>14.2f}")
        rows.append(dict(benchmark=name, build_s=first, reload_s=again, ratio=first / again))
    memory = mixture_memory()
    print(f"full mixture: {memory.pop('images'):,} images (train + test, 8 datasets)")
    for kind, value in memory.items():
        print(f"  {kind:<18}{value:>8.2f} GiB")
    write_json(args.json, dict(benchmark="bench_data", command=" ".join(["bench_data.py"] + sys.argv[1:]),
                               rows=rows,
                               ratios={f"build / reload, {r['benchmark']}": r["ratio"] for r in rows},
                               mixture_gib=memory), before)


if __name__ == "__main__":
    main()
