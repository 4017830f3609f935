"""DWA approach: anchor search on a fake model, params, training runs, presets, introspection."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from dwa_core.anchors import anchor_rows, anchor_search, hardest, orthogonal_candidates, override_loss
from dwa_core.approaches.dwa import DWAParams
from dwa_core.config import ConfigError, ExperimentConfig, TrainConfig, build_params
from dwa_core.experiment import run_experiment
from dwa_core.presets import list_presets, load_preset


class Fake(nn.Module):
    """embedding = x (identity gate); logits = embedding (2 classes)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.state = None

    def forward(self, x, t, embedding=None):
        e = x if embedding is None else embedding.expand(len(x), -1)
        self.state = SimpleNamespace(embedding=e, masks={})
        return e + 0 * self.w


def test_override_loss_and_ranking():
    model = Fake()
    x, y = torch.zeros(3, 2), torch.tensor([0, 0, 1])
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    lo, hi = math.log1p(math.exp(-1)), math.log1p(math.exp(1))
    assert override_loss(model, x, y, 0, b, batch_size=2).item() == pytest.approx((2 * hi + lo) / 3)
    assert override_loss(model, x, y, 0, b, 2, "last-batch").item() == pytest.approx(lo)
    vs = torch.stack([a, b])
    assert hardest(model, x, y, 0, vs, 2, "paper").tolist() == b.tolist()  # whole set: b is worse
    # the original code: last batch only
    assert hardest(model, x, y, 0, vs, 2, "last-batch").tolist() == a.tolist()


def test_orthogonal_candidates_and_rows():
    p = torch.tensor([3.0, 4.0, 0.0])  # not unit: still exactly orthogonal after normalising P
    v = orthogonal_candidates(p, 5, torch.Generator().manual_seed(0))
    assert v.shape == (5, 3)
    assert torch.allclose(v @ p, torch.zeros(5), atol=1e-5)
    assert torch.allclose(v.norm(dim=1), torch.ones(5))
    z = torch.tensor([0.9, 0.1, 0.5, 0.0, 0.3])
    assert anchor_rows(z, 2).tolist() == [3, 1]
    assert anchor_rows(z, 2, threshold=0.4).tolist() == [1, 3]  # stored order


def test_anchor_search_fake():
    model = Fake()
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    y = torch.tensor([0, 0])
    prev = [torch.tensor([5.0, 0.0]), torch.tensor([0.0, 5.0])]
    out = anchor_search(model, x, y, 1, prev, candidates=4, generator=torch.Generator().manual_seed(0))
    assert out["positive"].tolist() == [2.0, 0.0]
    # orthogonal to P = (2,0) and unit: (0, ±1); the hardest for class 0 is (0, +1)
    assert out["negative"].tolist() == pytest.approx([0.0, 1.0])
    assert out["previous"].tolist() == [0.0, 5.0]
    assert anchor_search(model, x, y, 0, [])["previous"] is None


def test_params():
    p = DWAParams()
    assert (p.lamb_triplet, p.lamb_plasticity, p.lamb_sparsity, p.alpha) == (20, 0.1, 500, 1.5)
    assert p.curriculum.kind == "linear" and p.curriculum.epochs == 100 and p.curriculum.start == 0.2
    assert DWAParams(curriculum=None).curriculum is None
    for bad in ({"triplet_form": "x"}, {"anchor_ranking": "x"}, {"curriculum": "foo:1"}, {"alpha": -1}):
        with pytest.raises(ConfigError):
            build_params(DWAParams, bad, "approach_params")


def _cfg(**kw):
    base = dict(benchmark="split-digits", approach="dwa", train=TrainConfig(epochs=2, batch_size=16),
                approach_params={"curriculum": "linear:2:0.5", "anchor_samples": 16},
                benchmark_params={"per_class": 6}, network_params={"hidden": 32}, max_tasks=2)
    base.update(kw)
    return ExperimentConfig(**base)


def _finite(results):
    rows = [r for task in results.history for r in task]
    assert rows and all(math.isfinite(r["train_loss"]) and math.isfinite(r["valid_loss"]) for r in rows)
    assert all(math.isfinite(v) for row in results.loss for v in row[: len(row)] if v is not None)


def test_dwa_trains_mlp():
    from dwa_core.approaches.dwa import DWA

    seen = {}
    orig = DWA.after_task

    def spy(self, t, task):
        orig(self, t, task)
        seen[t] = (dict(self.fisher), list(self.anchors), self.model.masked_weight_names())

    DWA.after_task = spy
    try:
        results = run_experiment(_cfg(), save=False)
    finally:
        DWA.after_task = orig
    _finite(results)
    assert results.completed_tasks == 2
    fisher, anchors, names = seen[1]
    assert sorted(fisher) == sorted(names) and len(anchors) == 2
    assert all(torch.isfinite(f).all() and (f >= 0).all() for f in fisher.values())


def test_dwa_trains_alexnet_original_switches():
    cfg = _cfg(network="alexnet", benchmark_params={"per_class": 3, "shape": "3x32x32"},
               network_params={"fc_units": 32, "gate": "sigmoid", "emb_size": 8},
               train=TrainConfig(epochs=1, batch_size=16),
               approach_params={"curriculum": "exp:2:0.5", "anchor_samples": 8,
                                "triplet_form": "original-code",
                                "anchor_ranking": "last-batch", "fisher_form": "batch",
                                "fisher_accumulate": True, "stiff": 2,
                                "stiff_uncapped": True, "anchor_threshold": 0.4, "use_anchor_first": True,
                                "use_task_loss": True, "scale_att_loss": True})
    _finite(run_experiment(cfg, save=False))


@pytest.mark.parametrize("name", ["paper", "final-warm", "original-code"])
def test_presets_load_and_run(name):
    assert name in list_presets()
    preset = load_preset(name)
    assert preset["approach"] == "dwa" and "_doc" not in preset
    train = dict(preset["train"], epochs=1, warmup_epochs=1, batch_size=16)
    ap = dict(preset["approach_params"], curriculum="linear:2:0.5", anchor_samples=8)
    cfg = ExperimentConfig(benchmark="split-digits", approach="dwa", train=TrainConfig(**train),
                           approach_params=ap,
                           network_params=dict(preset["network_params"], hidden=16),
                           benchmark_params={"per_class": 4}, max_tasks=2)
    _finite(run_experiment(cfg, save=False))


def test_preset_values():
    paper, warm, orig = load_preset("paper"), load_preset("final-warm"), load_preset("original-code")
    assert paper["train"]["lr"] == 0.075 and paper["approach_params"]["lamb_plasticity"] == 0.1
    assert warm["train"]["warmup_divisor"] == 1000 and warm["approach_params"]["lamb_plasticity"] == 0.05
    assert orig["network_params"]["gate"] == "sigmoid" and orig["train"]["lr_schedule"] == "original-code"
    build_params(DWAParams, orig["approach_params"], "x")
    with pytest.raises(FileNotFoundError):
        load_preset("nope")


def test_introspect_and_extra_state():
    from dwa_core import data
    from dwa_core.experiment import build_approach, validate
    from dwa_core.introspection import introspect

    cfg = _cfg(train=TrainConfig(epochs=1, batch_size=16))
    bench = data.load_benchmark(cfg, torch.device("cpu"))
    approach = build_approach(cfg, validate(cfg), bench, torch.device("cpu"))
    approach.fit(0, bench.tasks[0])
    out = introspect(approach, bench, n_per_task=3, seed=0)
    assert sorted(out) == list(range(len(bench.tasks)))
    d, names = approach.model.embedding_size, approach.model.masked_weight_names()
    first = out[0]
    assert first["images"].shape[0] == 3 and first["emb"].shape == (3, d) and first["targets"].shape == (3,)
    assert sorted(first["masks"]) == sorted(names)
    for name in names:
        shape = dict(approach.model.named_parameters())[name].shape
        assert first["masks"][name].shape == (3, *shape)
    state = approach.extra_state()
    assert len(state["anchors"]) == 1 and state["anchors"][0].shape == (d,)
    other = build_approach(cfg, validate(cfg), bench, torch.device("cpu"))
    other.load_extra_state(state)
    assert torch.equal(other.anchors[0], approach.anchors[0]) and sorted(other.fisher) == sorted(names)


def _trained_dwa(**params):
    """A DWA approach after run_experiment on _cfg() (2 tasks), captured from its last after_task."""
    from dwa_core.approaches.dwa import DWA

    seen, orig = {}, DWA.after_task

    def spy(self, t, task):
        orig(self, t, task)
        seen["approach"] = self

    DWA.after_task = spy
    try:
        cfg = _cfg()
        run_experiment(cfg.replace(approach_params={**cfg.approach_params, **params}), save=False)
    finally:
        DWA.after_task = orig
    return seen["approach"]


def test_fisher_forms_per_sample_is_at_least_the_batch_form():
    per_sample = _trained_dwa(fisher_form="per-sample").fisher
    batch = _trained_dwa(fisher_form="batch").fisher
    assert DWAParams().fisher_form == "per-sample"
    # the running mean over tasks 0 and 1 of each form: by Jensen the mean of squared per-sample
    # gradients is at least |B|·(mean gradient)², and strictly larger once gradients differ
    for name in per_sample:
        assert per_sample[name].sum() > batch[name].sum()
    with pytest.raises(ConfigError, match="fisher_accumulate"):
        build_params(DWAParams, {"fisher_accumulate": True}, "approach_params")


def test_freeze_context_keeps_the_processor_after_task_0():
    approach = _trained_dwa(freeze_context=True)
    processor = {id(q) for q in approach.model.processor.parameters()}
    trainable = {id(q) for q in approach.trainable_parameters()}
    assert processor and not processor & trainable
    assert trainable  # the masked layers and generators still train
    free = _trained_dwa()
    assert {id(q) for q in free.model.processor.parameters()} <= {id(q) for q in free.trainable_parameters()}
