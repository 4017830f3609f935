"""DWA's batched per-sample Fisher (functional.fisher.masked_per_sample_fisher) against the loop of
one backward per sample under DWA's own loss (fisher_diagonal over batches of one, the reference):
the fused C kernel (rank-1 masks with aligned factors, float32), the PyTorch path (unaligned
factors, full masks, conv masks, float64), both gates, and after task 1 with the plasticity term."""

from types import SimpleNamespace

import pytest
import torch

from dwa_core.approaches.dwa import DWA
from dwa_core.config import TrainConfig
from dwa_core.functional.fisher import fisher_diagonal, iterate_batches, masked_per_sample_fisher
from dwa_core.models import build, kernels

# (arch, input shape, network params, rank-1 layers with aligned factors: the C kernel's): fc1 and
# fc2 16x16 align; with hidden 12 on 28x28 inputs fc1's factors are 98x96, not 12x784 (the PyTorch
# path) and fc2 12x12 aligns; the small AlexNet has conv masks (c2, c3), fc1 unaligned, fc2 aligned.
NETS = {"mlp aligned": ("mlp", (1, 4, 4), dict(hidden=16), 2),
        "mlp aligned sigmoid": ("mlp", (1, 4, 4), dict(hidden=16, gate="sigmoid"), 2),
        "mlp unaligned": ("mlp", (1, 28, 28), dict(hidden=12), 1),
        "mlp full masks": ("mlp", (1, 4, 4), dict(hidden=16, use_combination=False), 0),
        "alexnet": ("alexnet", (3, 32, 32), dict(fc_units=16, emb_size=5), 1),
        "alexnet sigmoid": ("alexnet", (3, 32, 32), dict(fc_units=16, emb_size=5, gate="sigmoid"), 1)}


def setup(name, dtype=torch.float32, n=13):
    arch, shape, params, _ = NETS[name]
    torch.manual_seed(0)
    model = build(arch, "dwa", shape, [2] * 3, params=params).to(dtype)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(n, *shape, generator=g, dtype=dtype), torch.randint(0, 2, (n,), generator=g)
    return DWA(model, TrainConfig(batch_size=5)), x, y


def loop_fisher(dwa, x, y, t):
    """The reference: one backward of DWA's loss per sample, masked weights only."""
    loss = lambda xb, yb: dwa.loss(dwa.forward(xb, t), yb, t)  # noqa: E731
    full = fisher_diagonal(dwa.model, iterate_batches(x, y, 1), loss, train_mode=False)
    return {k: full[k] for k in dwa.model.masked_weight_names()}


def assert_fisher_close(got, want, rtol):
    assert got.keys() == want.keys()
    for k in want:
        assert want[k].abs().max() > 0, k
        torch.testing.assert_close(got[k], want[k], rtol=rtol, atol=rtol * want[k].abs().max().item(),
                                   msg=lambda m, k=k: f"{k}: {m}")


def counting_kernel(monkeypatch):
    calls, real = [], kernels.fisher
    monkeypatch.setattr(kernels, "fisher", lambda *a: calls.append(a[0].shape) or real(*a))
    return calls


@pytest.mark.parametrize("name", list(NETS))
@pytest.mark.parametrize("t", [0, 1])
def test_batched_fisher_equals_the_loop_float32(name, t, monkeypatch):
    dwa, x, y = setup(name)
    if t == 1:  # a Fisher is held: DWA's loss now has the plasticity term, which has no W-gradient
        dwa.fisher = {k: torch.rand_like(p) for k, p in dwa.model.named_parameters()
                      if k in dwa.model.masked_weight_names()}
        dwa.model.eval()
        assert dwa.loss_terms(dwa.forward(x, 1), y, 1)["plasticity"] > 0
    want = loop_fisher(dwa, x, y, t)
    calls = counting_kernel(monkeypatch)
    got = masked_per_sample_fisher(dwa.model, iterate_batches(x, y, 5), t)  # chunks of 5, 5 and 3
    assert_fisher_close(got, want, rtol=1e-4)
    if kernels.rank_one() is not None:  # the C kernel computed each aligned rank-1 layer, per chunk
        assert len(calls) == 3 * NETS[name][3]
    assert all(p.grad is None for p in dwa.model.parameters())  # no .grad touched


@pytest.mark.parametrize("name", ["mlp aligned", "mlp unaligned", "alexnet"])
def test_batched_fisher_equals_the_loop_float64(name):
    dwa, x, y = setup(name, torch.float64)
    want = loop_fisher(dwa, x, y, 0)
    got = masked_per_sample_fisher(dwa.model, iterate_batches(x, y, 4), 0)
    assert_fisher_close(got, want, rtol=1e-10)


def test_aligned_mlp_takes_the_kernel_for_both_layers(monkeypatch):
    if kernels.rank_one() is None:
        pytest.skip(f"kernels unavailable: {kernels.unavailable_reason()}")
    dwa, x, y = setup("mlp aligned")
    calls = counting_kernel(monkeypatch)
    masked_per_sample_fisher(dwa.model, iterate_batches(x, y, 13), 0)
    assert calls == [(13, 16), (13, 16)]  # fc2 (with dx), fc1


@pytest.mark.parametrize("name", ["mlp aligned", "alexnet"])
def test_the_fisher_pass_leaves_out_the_fused_plasticity_term(name):
    """After task 0 the network computes the plasticity term in its layers' pass; the Fisher pass
    needs CE alone, so it runs without it (the outputs are the same bits either way) and hands the
    Fisher back to the network afterwards."""
    dwa, x, y = setup(name)
    dwa.model.eval()
    plain = dwa.model(x, 1)
    dwa.fisher = {k: torch.rand_like(p) for k, p in dwa.model.named_parameters()
                  if k in dwa.model.masked_weight_names()}
    dwa._share_fisher()
    assert torch.equal(dwa.model(x, 1), plain)
    seen = []
    hook = dwa.model.register_forward_hook(lambda m, i, o: seen.append(m.plasticity_weights))
    got = masked_per_sample_fisher(dwa.model, iterate_batches(x, y, 5), 1)
    hook.remove()
    assert seen == [None] * 3 and dwa.model.plasticity_weights is dwa.fisher
    dwa.model.plasticity_weights = None
    want = masked_per_sample_fisher(dwa.model, iterate_batches(x, y, 5), 1)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_a_frozen_masked_weight_is_an_error():
    dwa, x, y = setup("mlp aligned")
    dwa.model.fc1.weight.requires_grad_(False)
    with pytest.raises(ValueError, match="require grad"):
        masked_per_sample_fisher(dwa.model, iterate_batches(x, y, 5), 0)


@pytest.mark.parametrize("name", ["mlp aligned", "alexnet"])
def test_after_task_stores_the_loops_fisher(name):
    """Task 0's Fisher, then the sum with task 1's (fisher_combine "sum"), each computed by the loop
    with the approach's state at that point (task 1: the plasticity term of task 0's Fisher)."""
    dwa, x, y = setup(name)
    task = SimpleNamespace(train=SimpleNamespace(x=x, y=y))
    dwa.model.eval()
    first = loop_fisher(dwa, x, y, 0)
    dwa.after_task(0, task)
    assert_fisher_close(dwa.fisher, first, rtol=1e-4)
    second = loop_fisher(dwa, x, y, 1)
    dwa.after_task(1, task)
    assert_fisher_close(dwa.fisher, {k: first[k] + second[k] for k in first}, rtol=1e-4)
