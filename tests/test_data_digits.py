"""The offline digits benchmarks: real scikit-learn data, seeded splits and permutations."""

import numpy as np
import pytest
import torch

from dwa_core import ConfigError, ExperimentConfig
from dwa_core.data import load_benchmark


def bench(**params):
    return load_benchmark(ExperimentConfig(benchmark_params=params))


def test_split_digits_tasks_and_labels():
    b = bench()
    assert len(b) == 5 and b.task_classes == [2] * 5 and b.input_shape == (1, 8, 8)
    names = sorted(t.name for t in b.tasks)
    assert names == ["digits-0-1", "digits-2-3", "digits-4-5", "digits-6-7", "digits-8-9"]
    total = sum(len(t.train) + len(t.valid) + len(t.test) for t in b.tasks)
    assert total == 1797  # every real digit used exactly once
    for task in b.tasks:
        for split in (task.train, task.valid, task.test):
            assert set(split.y.tolist()) == {0, 1} and split.x.dtype == torch.float32


def test_validation_is_held_out_and_seeded():
    a, b = bench(), bench()
    ta = a.tasks[0]
    torch.testing.assert_close(ta.valid.x, b.tasks[0].valid.x)
    train_rows = {tuple(r) for r in ta.train.x.flatten(1).tolist()}
    assert not any(tuple(r) in train_rows for r in ta.valid.x.flatten(1).tolist()[:20])
    other = load_benchmark(ExperimentConfig(seed=1))
    assert [t.name for t in other.tasks] != [t.name for t in a.tasks]  # order follows the seed


def test_shapes_for_the_papers_networks():
    assert bench(shape="1x28x28").input_shape == (1, 28, 28)
    b = bench(shape="3x32x32")
    assert b.input_shape == (3, 32, 32) and b.network == "alexnet"
    x = b.tasks[0].train.x
    assert (x[:, :, :2, :] == x[0, 0, 0, 0]).all()  # zero padding (normalised) of 2 pixels
    torch.testing.assert_close(x[:, 0], x[:, 2])  # grey copied to 3 channels


def test_per_class_subsample():
    b = bench(per_class=7)
    for task in b.tasks:
        assert np.bincount(task.train.y.numpy()).tolist() == [7, 7]


def test_permuted_digits_permutations_depend_on_seed_and_task_only():
    cfg = ExperimentConfig(benchmark="permuted-digits", benchmark_params={"n_tasks": 3})
    a, b = load_benchmark(cfg), load_benchmark(cfg.replace(benchmark_params={"n_tasks": 4}))
    assert a.task_classes == [10, 10, 10] and len(b) == 4
    for ta, tb in zip(a.tasks, b.tasks):
        torch.testing.assert_close(ta.test.x, tb.test.x)
    assert not torch.equal(a.tasks[0].test.x, a.tasks[1].test.x)
    # a permutation moves pixels: sorted pixel values of one image are unchanged
    torch.testing.assert_close(a.tasks[0].test.x[0].flatten().sort().values,
                               a.tasks[1].test.x[0].flatten().sort().values)


@pytest.mark.parametrize("params, message", [({"per_class": 0}, "per_class"),
                                             ({"n_tasks": 4}, "n_tasks"), ({"colour": 1}, "unknown")])
def test_bad_benchmark_params(params, message):
    with pytest.raises(ConfigError, match=message):
        bench(**params)
