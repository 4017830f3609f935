"""The paper's full mixture run projected from a short measured run (issue 14; for a GPU session).

    PYTHONPATH=. python benchmarks/project_mixture.py RUN_DIR/results.json [--epochs 200]

RUN_DIR is a finished run of a few epochs, e.g. `python -m dwa_core run --preset final-warm
--benchmark mixture-offline --device cuda --epochs 3`. Each epoch's wall time (training + the
validation pass, from the run's history) is divided by its task's training-set size; the first
epoch of each task is left out (it includes Triton's and cuDNN's first-call compilation). The
median seconds per training sample, times the full mixture's training samples (seed_spec §8.4:
the 8 datasets after the 15 % validation split; the validation sets are 15 % there as here), is
one epoch over all 8 tasks. The paper's run trains each task for at most 200 epochs (the lr
schedule usually stops it sooner), so 200 such epochs is an upper bound, not a prediction."""

from __future__ import annotations

import argparse
import statistics

from dwa_core.config import ExperimentConfig
from dwa_core.data import load_benchmark
from dwa_core.results import Results

# seed_spec §8.4, "train after split"; FaceScrub and notMNIST are the approximate counts given there
FULL_MIXTURE_TRAIN = {"cifar10": 42_500, "cifar100": 42_500, "mnist": 51_000, "svhn": 62_269,
                      "fashion_mnist": 51_000, "traffic_signs": 33_328, "facescrub": 17_510,
                      "not_mnist": 14_326}


def seconds_per_sample(results: Results, train_sizes: list[int]) -> list[float]:
    """Wall seconds per training sample of every epoch after each task's first."""
    return [row["seconds"] / n for rows, n in zip(results.history, train_sizes) for row in rows[1:]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", help="results.json of the short run")
    parser.add_argument("--epochs", type=int, default=200, help="epochs per task of the projected run")
    args = parser.parse_args()
    results = Results.load(args.results)
    fields = ExperimentConfig.__dataclass_fields__
    cfg = ExperimentConfig(**{k: v for k, v in results.config.items() if k in fields})
    bench = load_benchmark(cfg)
    sizes = [len(task.train) for task in bench.tasks][: len(results.history)]
    per_sample = seconds_per_sample(results, sizes)
    if not per_sample:
        raise SystemExit("need at least 2 epochs per task (the first is left out)")
    rate = statistics.median(per_sample)
    epoch = rate * sum(FULL_MIXTURE_TRAIN.values())
    print(f"measured on {results.device} ({results.config['benchmark']}, batch {cfg.train.batch_size}): "
          f"{len(per_sample)} epochs, median {1 / rate:.0f} training samples/s including validation "
          f"(range {1 / max(per_sample):.0f}-{1 / min(per_sample):.0f})")
    print(f"full mixture ({sum(FULL_MIXTURE_TRAIN.values()):,} training samples over 8 tasks): "
          f"{epoch / 60:.1f} min per epoch of every task; at most {args.epochs} epochs per task: "
          f"<= {epoch * args.epochs / 3600:.1f} h (an upper bound: the lr schedule stops tasks earlier)")


if __name__ == "__main__":
    main()
