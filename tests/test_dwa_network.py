"""DWA network and masked layers: fast == reference, shapes, gradients, variants, mask losses."""

import math

import pytest
import torch

from dwa_core.config import ConfigError
from dwa_core.functional.dwa_masks import plasticity_loss, sparsity_loss
from dwa_core.models import NETWORKS, build, count_parameters
from dwa_core.models.dwa import DWAState, combination_sizes
from dwa_core.models.masked import FullMask, MaskedConv2d, MaskedLinear, RankOneMask

MIXTURE = [100, 10, 100, 10, 10, 10, 43, 10]


def _grads(module, inputs, out):
    return torch.autograd.grad(out.pow(2).sum(), [*inputs, *module.parameters()])


@pytest.mark.parametrize("gate", ["tanh", "sigmoid"])
def test_masked_linear_fast_matches_reference(gate):
    torch.manual_seed(0)
    fast, ref = MaskedLinear(8, 2).double(), MaskedLinear(8, 2, impl="reference").double()
    ref.load_state_dict(fast.state_dict())
    a, b = combination_sizes(16)  # (out, in) = (2, 8) from a 4 x 4 outer product
    x, u, v = (torch.randn(5, n, dtype=torch.float64, requires_grad=True) for n in (8, b, a))
    outs = [layer(x, RankOneMask(u, v, gate, (2, 8))) for layer in (fast, ref)]
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-10)
    for g_fast, g_ref in zip(_grads(fast, (x, u, v), outs[0]), _grads(ref, (x, u, v), outs[1])):
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-5, atol=1e-10)


def test_masked_linear_matches_per_sample_loop():
    torch.manual_seed(1)
    layer = MaskedLinear(8, 2).double()
    assert combination_sizes(16) == (4, 4)
    x, u, v = torch.randn(4, 8).double(), torch.randn(4, 4).double(), torch.randn(4, 4).double()
    y = layer(x, RankOneMask(u, v, "tanh", (2, 8)))
    for i in range(4):
        h = torch.tanh(torch.outer(u[i], v[i])).reshape(2, 8)  # row-major reshape of the 4 x 4 matrix
        torch.testing.assert_close(y[i], (layer.weight * h) @ x[i] + layer.bias)


def test_masked_conv_fast_matches_reference_and_loop():
    torch.manual_seed(0)
    fast, ref = MaskedConv2d(3, 5, 2).double(), MaskedConv2d(3, 5, 2, impl="reference").double()
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(4, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    h = torch.sigmoid(torch.randn(4, 5, 3, 2, 2, dtype=torch.float64)).requires_grad_()
    outs = [layer(x, FullMask(h)) for layer in (fast, ref)]
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-10)
    for i in range(4):
        expected = torch.nn.functional.conv2d(x[i:i + 1], fast.weight * h[i], fast.bias)
        torch.testing.assert_close(outs[0][i:i + 1], expected)
    for g_fast, g_ref in zip(_grads(fast, (x, h), outs[0]), _grads(ref, (x, h), outs[1])):
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-5, atol=1e-10)


def _small_alexnet(impl="fast", **kw):
    torch.manual_seed(0)
    return NETWORKS.get("alexnet-dwa")((3, 16, 16), [3, 2], fc_units=12, emb_size=6, processor_feats=(4, 5),
                                       masked_impl=impl, **kw).double()


@pytest.mark.parametrize("use_combination,gate", [(True, "tanh"), (True, "sigmoid"), (False, "tanh")])
def test_network_fast_matches_reference(use_combination, gate):
    fast, ref = (_small_alexnet(impl, use_combination=use_combination, gate=gate)
                 for impl in ("fast", "reference"))
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(5, 3, 16, 16, dtype=torch.float64)
    outs = [net(x, 1) for net in (fast, ref)]
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-10)
    # the fast layer also yields Σ|H| for the sparsity loss: check it and its gradient, with and without CE
    for with_ce in (True, False):
        grads = []
        for out, net in zip(outs, (fast, ref)):
            loss = sparsity_loss(net.state, 0.0, "paper") + sparsity_loss(net.state, 0.0, "original-code")
            loss = loss + out.logsumexp(1).sum() if with_ce else loss
            grads.append(torch.autograd.grad(loss, list(net.parameters()), materialize_grads=True,
                                             retain_graph=True))
        for (name, _), g_fast, g_ref in zip(fast.named_parameters(), *grads):
            torch.testing.assert_close(g_fast, g_ref, rtol=1e-5, atol=1e-10, msg=name)


def test_mask_shapes_and_gradients_reach_generators_and_processor():
    net = _small_alexnet()
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64)
    net(x, torch.tensor([0, 1, 1])).nan_to_num(neginf=0.0).sum().backward()
    assert net.masked_weight_names() == ["c2.weight", "c3.weight", "fc1.weight", "fc2.weight"]
    for name, mask in net.state.masks.items():
        weight = dict(net.named_parameters())[name]
        assert mask.materialise().shape == (3, *weight.shape)
    assert net.state.embedding.shape == (3, net.embedding_size)
    for name, p in net.named_parameters():
        if name.startswith(("generators", "processor", "c1")):
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_embedding_override_is_broadcast_and_ungated():
    net = _small_alexnet()
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    e = torch.full((6,), 3.0, dtype=torch.float64)  # tanh would squash 3.0
    out = net(x, 0, embedding=e)
    assert torch.equal(net.state.embedding, e.expand(4, 6))
    torch.testing.assert_close(net(x[:1], 0, embedding=e), out[:1])


def test_mixture_parameter_count():
    net = build("alexnet", "dwa", (3, 32, 32), MIXTURE)
    assert count_parameters(net) == 28_756_969
    assert (combination_sizes(2048 * 1024), combination_sizes(2048 * 2048)) == ((1024, 2048), (2048, 2048))


@pytest.mark.parametrize("kw", [dict(use_stem=0), dict(use_stem=2), dict(use_stem=3), dict(use_stem=4),
                                dict(use_concat=True), dict(use_concat=True, use_stem=2),
                                dict(use_concat=True, use_stem=4), dict(use_processor=False),
                                dict(use_dropout=True), dict(gate="sigmoid"), dict(use_combination=False)])
def test_variants_build_and_run(kw):
    net = build("alexnet", "dwa", (3, 32, 32), [3, 2], params=dict(fc_units=16, emb_size=5, **kw))
    out = net(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    assert out.shape == (2, 3) and torch.isfinite(out[:, :2]).all()
    assert len(net.state.masks) == 5 - kw.get("use_stem", 1)
    if kw.get("use_processor") is False:
        assert torch.equal(net.state.embedding, torch.eye(2))


def test_mlp_dwa_and_bad_options():
    net = build("mlp", "dwa", (1, 28, 28), [2, 3], params=dict(hidden=10))
    assert net(torch.randn(4, 1, 28, 28), 1).shape == (4, 3)
    assert net.masked_weight_names() == ["fc1.weight", "fc2.weight"]
    for bad in (dict(gate="relu"), dict(use_stem=5), dict(masked_impl="slow"), dict(use_processor="false")):
        with pytest.raises(ConfigError):
            build("alexnet", "dwa", (3, 32, 32), [2], params=bad)


def _tiny_state():
    """One full 1x2 mask and one rank-1 mask gate(u vᵀ) with u=(1,-1), v=(0.5,) -> shape (2, 1)."""
    h_full = torch.tensor([[[0.5, -0.25]], [[0.0, 1.0]]])  # (B=2, 1, 2)
    u, v = torch.tensor([[1.0, -1.0], [2.0, 0.0]]), torch.tensor([[0.5], [1.0]])
    masks = {"a.weight": FullMask(h_full), "b.weight": RankOneMask(u, v, "tanh", (2, 1))}
    return DWAState(torch.zeros(2, 3), masks)


def test_plasticity_hand_values():
    state = _tiny_state()
    fisher = {"a.weight": torch.tensor([[2.0, 4.0]]), "b.weight": torch.tensor([[1.0], [3.0]])}
    t = math.tanh(0.5)
    # paper: sample 0: a 2*relu(5)+4*relu(-2.5)=10, b 1*relu(10 t)+3*relu(-10 t)=10t; sample 1: a 4*10=40,
    # b: h = (tanh 2, 0) -> 10 tanh 2. Mean over batch of per-sample sums.
    expected = (10 + 10 * t + 40 + 10 * math.tanh(2)) / 2
    assert plasticity_loss(state, fisher, "paper", eta=10.0).item() == pytest.approx(expected)
    # original-code: mean over batch and positions of |H|*F per layer, summed.
    a = (2 * 0.5 + 4 * 0.25 + 0 + 4 * 1) / 4
    b = (t + 3 * t + math.tanh(2) + 0) / 4
    assert plasticity_loss(state, fisher, "original-code").item() == pytest.approx(a + b)
    assert plasticity_loss(state, fisher, "original-code", scale=[0.5, 2]).item() == pytest.approx(
        0.5 * a + 2 * b)
    # scale=True: kappa_j = 0.2 + j * 0.8 / J with J = 2 masked layers -> 0.2, 0.6
    scaled = plasticity_loss(state, fisher, "original-code", scale=True)
    assert scaled.item() == pytest.approx(0.2 * a + 0.6 * b)


def test_sparsity_hand_values():
    state, t, t2 = _tiny_state(), math.tanh(0.5), math.tanh(2)
    # mean |H| per sample: a (0.375, 0.5); b (t, tanh(2)/2); paper and binary: mean over the 2 samples
    paper = (max(0.375 - 0.2, 0) + max(0.5 - 0.2, 0) + max(t - 0.2, 0) + max(t2 / 2 - 0.2, 0)) / 2
    assert sparsity_loss(state, 0.2, "paper").item() == pytest.approx(paper)
    orig = max(0.625 - 0.2, 0) + max(0.5 - 0.2, 0) + max(1 - t - 0.2, 0) + max(1 - t2 / 2 - 0.2, 0)
    assert sparsity_loss(state, 0.2, "original-code").item() == pytest.approx(orig)
    # binary: non-zero fractions a (1, 0.5), b (1, 0.5); minus mu=0.6 -> (0.4 + 0) / 2 + (0.4 + 0) / 2
    assert sparsity_loss(state, 0.6, "binary").item() == pytest.approx(0.4)


@pytest.mark.parametrize("gate", ["tanh", "sigmoid"])
def test_mask_losses_gradients_match_materialised(gate):
    torch.manual_seed(0)
    u, v = torch.randn(5, 6, dtype=torch.float64, requires_grad=True), torch.randn(5, 4, dtype=torch.float64,
                                                                                  requires_grad=True)
    fisher = {"w": torch.rand(6, 4, dtype=torch.float64)}
    for form, fn in (("paper", lambda s: plasticity_loss(s, fisher, "paper")),
                     ("original-code", lambda s: plasticity_loss(s, fisher, "original-code")),
                     ("paper", lambda s: sparsity_loss(s, 0.1, "paper")),
                     ("original-code", lambda s: sparsity_loss(s, 0.1, "original-code"))):
        fused = fn(DWAState(u, {"w": RankOneMask(u, v, gate, (6, 4))}))
        full = fn(DWAState(u, {"w": FullMask(RankOneMask(u, v, gate, (6, 4)).materialise())}))
        torch.testing.assert_close(fused, full)
        for g1, g2 in zip(torch.autograd.grad(fused, (u, v)), torch.autograd.grad(full, (u, v))):
            torch.testing.assert_close(g1, g2, msg=form)


def test_binary_sparsity_counts_the_same_over_several_chunks():
    # Rank-1 masks are materialised a chunk of samples at a time for the binary form; 5 samples of a
    # (3, 4) mask with room for 2 per chunk -> chunks of 2, 2, 1, equal to the whole batch at once.
    from dwa_core.functional.dwa_masks import _nonzero_fraction
    from dwa_core.models.masked import RankOneMask

    u = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 3.0, 0.0], [1.0, 0.0, 0.0]])
    v = torch.tensor([[1.0, 1.0, 0.0, 1.0]] * 5)
    mask = RankOneMask(u, v, "tanh", (3, 4))
    # non-zero entries of u_b v_bᵀ: (2·3, 0, 3·3, 1·3, 1·3) of 12 (tanh(0) = 0)
    expected = torch.tensor([6.0, 0.0, 9.0, 3.0, 3.0]) / 12
    torch.testing.assert_close(_nonzero_fraction(mask, chunk_elements=2 * 12), expected)
    torch.testing.assert_close(_nonzero_fraction(mask, chunk_elements=1), expected)
    torch.testing.assert_close(_nonzero_fraction(mask), expected)


def test_a_width_whose_mask_factors_do_not_align_warns_of_the_slow_path():
    import warnings as w

    from dwa_core.models.dwa import MLPDWA

    with w.catch_warnings(record=True) as caught:
        w.simplefilter("always")
        MLPDWA((1, 28, 28), [2, 2], hidden=800)  # 784x800 -> factors 800 x 784; 800x800 -> 800 x 800
    assert not [c for c in caught if "per-sample PyTorch path" in str(c.message)]
    with pytest.warns(UserWarning, match=r"fc1 \(400x784\).*560x560"):  # 313600 = 560²
        MLPDWA((1, 28, 28), [2, 2], hidden=400)
