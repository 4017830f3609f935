"""Progressive networks and PathNet: exact retention, column/module isolation, mutation, determinism."""

import numpy as np
import pytest
import torch

from dwa_core import ExperimentConfig, TrainConfig, data, run_experiment
from dwa_core.approaches.pathnet import mutate, random_path
from dwa_core.experiment import build_approach, validate
from dwa_core.models import build, count_parameters
from dwa_core.models.progressive import column_widths

TRAIN = TrainConfig(epochs=2, lr=0.1)
PROGRESSIVE = ExperimentConfig(approach="progressive", train=TRAIN, network_params={"hidden": 16})
PATHNET = ExperimentConfig(approach="pathnet", train=TRAIN, approach_params={"generations": 2},
                           network_params={"hidden": 16, "modules": 6})


@pytest.fixture(scope="module")
def acc():
    return {cfg.approach: run_experiment(cfg, save=False).acc_matrix() for cfg in (PROGRESSIVE, PATHNET)}


@pytest.mark.parametrize("name", ["progressive", "pathnet"])
def test_every_earlier_task_is_kept_exactly(acc, name):
    a = acc[name]
    for t in range(5):
        for u in range(t + 1):
            assert a[t, u] == a[u, u]
    assert np.diag(a).mean() > 0.6  # and it does learn


@pytest.mark.parametrize("cfg", [PROGRESSIVE, PATHNET], ids=["progressive", "pathnet"])
def test_same_config_twice_gives_the_same_matrix(acc, cfg):
    np.testing.assert_array_equal(run_experiment(cfg, save=False).acc_matrix(), acc[cfg.approach])


def test_column_widths_follow_the_seed_formula():
    # the original widths, docs/original-code.md#approaches
    assert column_widths((64, 128, 256, 2048, 2048), 8) == [8, 17, 35, 285, 285]
    assert column_widths((800,), 5) == [178]  # int(1.117 * 800 / 5) = int(178.72)


def test_progressive_forward_touches_only_columns_up_to_t():
    model = build("mlp", "progressive", (1, 8, 8), [2] * 4, {"hidden": 5})
    used = set()
    for j, column in enumerate(model.columns):
        column.register_forward_hook(lambda mod, inp, out, j=j: used.add(j))
        for layer in column.layers:  # a column is "touched" if any of its layers runs
            layer.register_forward_hook(lambda mod, inp, out, j=j: used.add(j))
    for t in range(4):
        used.clear()
        model.eval()(torch.zeros(3, 1, 8, 8), t)
        assert used == set(range(t + 1))


def test_progressive_adapter_parameters_grow_with_the_task():
    # hidden 5, 3 layers, 64 inputs: adapters into layers 2, 3 of column j (j earlier columns):
    # V = Linear(5j, 5) -> 25j + 5, U = Linear(5, 5) -> 30, alpha -> j: per layer 26j + 35.
    model = build("mlp", "progressive", (1, 8, 8), [2] * 3, {"hidden": 5})
    counts = [count_parameters(a) for a in model.adapters]
    assert counts == [0, 2 * (26 + 35), 2 * (52 + 35)]
    column = 64 * 5 + 5 + 2 * (5 * 5 + 5)
    assert count_parameters(model.columns[0]) == column


def test_progressive_freezes_everything_but_column_t():
    cfg = PROGRESSIVE
    plan = validate(cfg)
    bench = data.load_benchmark(cfg, torch.device("cpu"))
    approach = build_approach(cfg, plan, bench, torch.device("cpu"))
    approach.fit(0, bench.tasks[0])
    column0 = {k: v.clone() for k, v in approach.model.columns[0].state_dict().items()}
    approach.fit(1, bench.tasks[1])
    for k, v in approach.model.columns[0].state_dict().items():
        assert torch.equal(v, column0[k]), k
    trainable = {id(p) for p in approach.trainable_parameters()}
    assert trainable == {id(p) for p in approach.model.task_parameters(1)}


def test_mutation_stays_in_range_with_the_right_rate():
    g = torch.Generator().manual_seed(0)
    modules, trials = 16, 4000
    path = random_path(5, 3, modules, g)
    assert path.shape == (5, 3) and path.min() >= 0 and path.max() < modules
    changed = 0
    for _ in range(trials):
        new = mutate(path, modules, g)
        assert new.min() >= 0 and new.max() < modules
        diff = (new - path) % modules
        assert set(diff.unique().tolist()) <= {0, 1, 2, modules - 2, modules - 1}  # +-1, +-2 mod M
        changed += int((new != path).sum())
    # An entry is hit with probability 1/15 and then moves unless the draw is 0 (1 in 5):
    # expected changes 4000 * 15 * (1/15) * (4/5) = 3200, standard deviation about 55.
    assert 2900 < changed < 3500


def test_mutation_wraps_modulo_m():
    g = torch.Generator().manual_seed(1)
    path = torch.tensor([[0, 15]])
    outs = {tuple(mutate(path, 16, g, prob=1.0)[0].tolist()) for _ in range(200)}
    firsts, seconds = {a for a, _ in outs}, {b for _, b in outs}
    assert firsts == {14, 15, 0, 1, 2} and seconds == {13, 14, 15, 0, 1}


def test_pathnet_frozen_modules_keep_their_weights_and_others_reset():
    cfg = PATHNET
    bench = data.load_benchmark(cfg, torch.device("cpu"))
    approach = build_approach(cfg, validate(cfg), bench, torch.device("cpu"))
    initial = {k: v.clone() for k, v in approach.model.state_dict().items()}
    approach.fit(0, bench.tasks[0])
    after0 = {k: v.clone() for k, v in approach.model.state_dict().items()}
    best0 = approach.best_paths[0]
    approach.fit(1, bench.tasks[1])
    after1 = approach.model.state_dict()
    frozen = {(layer, m) for layer, row in enumerate(best0) for m in row}
    assert frozen
    for layer, m in frozen:
        keys = [k for k in after1 if k.startswith(f"layers.{layer}.{m}.")]
        assert keys and all(torch.equal(after1[k], after0[k]) for k in keys)
    assert any(not torch.equal(after0[k], initial[k]) for k in after0 if k.startswith("layers."))
    assert torch.equal(after1["last.heads.0.weight"], after0["last.heads.0.weight"])
    assert approach.extra_state()["best_paths"][0] == [list(r) for r in best0]


def test_pathnet_resets_unused_modules_at_a_new_task():
    cfg = PATHNET
    bench = data.load_benchmark(cfg, torch.device("cpu"))
    approach = build_approach(cfg, validate(cfg), bench, torch.device("cpu"))
    initial = {k: v.clone() for k, v in approach.model.state_dict().items()}
    approach.fit(0, bench.tasks[0])
    approach.before_task(1, bench.tasks[1])
    frozen = approach.frozen_modules()
    state = approach.model.state_dict()
    for layer in range(approach.model.n_layers):
        for m in range(approach.model.n_modules):
            keys = [k for k in state if k.startswith(f"layers.{layer}.{m}.")]
            if (layer, m) not in frozen:
                assert all(torch.equal(state[k], initial[k]) for k in keys)
                assert all(p.requires_grad for p in approach.model.layers[layer][m].parameters())
            else:
                assert not any(p.requires_grad for p in approach.model.layers[layer][m].parameters())


@pytest.mark.parametrize("name,params", [("progressive", {}), ("pathnet", {"generations": 1})])
def test_runs_on_3x32x32_alexnet(name, params):
    cfg = ExperimentConfig(approach=name, train=TrainConfig(epochs=1), approach_params=params,
                           benchmark_params={"shape": "3x32x32", "per_class": 5}, max_tasks=2)
    results = run_experiment(cfg, save=False)
    assert all(np.isfinite(row["train_loss"]) for rows in results.history for row in rows)
    assert results.acc_matrix().shape[0] >= 2


@pytest.mark.parametrize("cfg", [PROGRESSIVE, PATHNET], ids=["progressive", "pathnet"])
def test_resume_after_an_interruption_gives_the_same_matrix(acc, cfg, tmp_path, interrupt_and_resume):
    results, trained = interrupt_and_resume(cfg.replace(output_dir=str(tmp_path)))
    assert min(trained) == 2
    np.testing.assert_array_equal(results.acc_matrix(), acc[cfg.approach])
