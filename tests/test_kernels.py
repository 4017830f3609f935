"""The fused C kernels of the rank-1 masked layers (dwa_core/models/kernels) against float64 PyTorch:
the gates, the layer, the mask-loss reduction, a paper-size network, and the fallback without them.

"rel" below is ||a - b|| / ||b|| per tensor, the relative error of the whole output or gradient."""

import pytest
import torch

from dwa_core import numerics
from dwa_core.functional import dwa_masks
from dwa_core.functional.dwa_masks import plasticity_loss, sparsity_loss
from dwa_core.models import build, kernels
from dwa_core.models.dwa import DWAState
from dwa_core.models.masked import FullMask, MaskedLinear, RankOneMask, kernel_applies

MIXTURE = [100, 10, 100, 10, 10, 10, 43, 10]

pytestmark = pytest.mark.skipif(kernels.rank_one() is None,
                                reason=f"kernels unavailable: {kernels.unavailable_reason()}")


@pytest.fixture(params=[3, 5], ids=["numerics3", "numerics5"])
def version(request, monkeypatch) -> int:
    """Run the test under numerics 5 (the default: tanh_exp2, four rows per pass, the full masks' C
    passes) and 3 (DWA_CORE_NUMERICS=3: without them)."""
    monkeypatch.setattr(numerics, "VERSION", request.param)
    return request.param


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("gate,kind", [("tanh", "abs"), ("sigmoid", "relu")])
def test_gates_match_float64_over_their_range(gate, kind, version):
    """rows[0, o] = Σ_k I[o, k] φ(gate(1 · z_k)) = φ(gate(z_o)) with an identity weight: the gate
    itself."""
    tiny = torch.tensor([0.0, 1e-8, -1e-6, 1e-4, -1e-3, 0.124, 0.126])
    z = torch.cat([torch.linspace(-30, 30, 2001), tiny])
    n = z.numel()
    got = dwa_masks.weighted_sum(RankOneMask(torch.ones(1, n), z[None], gate, (n, n)), torch.eye(n), kind)
    assert got.shape == (1,)
    rows = [dwa_masks.weighted_sum(RankOneMask(torch.ones(1, 1), z[None, i:i + 1], gate, (1, 1)),
                                   torch.ones(1, 1), kind) for i in range(n)]
    exact = torch.tanh(z.double()).abs() if gate == "tanh" else torch.sigmoid(z.double())
    values = torch.cat(rows).double()
    err = ((values - exact).abs() / exact.abs().clamp(min=1e-30)).max()
    assert err < 2e-6, err  # relative, element by element, down to tiny arguments
    assert abs(float(got) - float(exact.sum())) / float(exact.sum()) < 1e-6


# (batch, out, in): odd sizes, so that the vector loops' remainders are exercised; the second gives
# row ranges of 5 and 6 rows (numerics 5's four-row passes and a row left over) and an input longer
# than the four-row backward's chunk of 1024.
SIZES = [(6, 37, 29), (3, 83, 1100)]


@pytest.mark.parametrize("sizes", SIZES, ids=["small", "row-blocks"])
@pytest.mark.parametrize("gate", ["tanh", "sigmoid"])
def test_masked_linear_kernel_matches_float64_reference(gate, sizes, version):
    torch.manual_seed(0)
    batch, n_out, n_in = sizes
    layer = MaskedLinear(n_in, n_out)
    x, u, v = torch.randn(batch, n_in), torch.randn(batch, n_out), torch.randn(batch, n_in)
    mask = RankOneMask(u, v, gate, (n_out, n_in))
    assert kernel_applies(x, layer.weight, mask)
    weights = torch.arange(1.0, batch + 1)

    def run(impl, dtype):
        lay = MaskedLinear(n_in, n_out, impl=impl).to(dtype)
        lay.load_state_dict(layer.state_dict())
        xs = [t.to(dtype).requires_grad_() for t in (x, u, v)]
        m = RankOneMask(xs[1], xs[2], gate, (n_out, n_in))
        y = lay(xs[0], m)
        s = m.abs_sum if m.abs_sum is not None else m.materialise().abs().flatten(1).sum(1)
        loss = (y * torch.linspace(-1, 1, n_out, dtype=dtype)).pow(2).sum()
        loss = loss + (s * weights.to(dtype)).sum() * 1e-2
        return [y, s, *torch.autograd.grad(loss, [*xs, lay.weight, lay.bias])]

    fast, exact = run("fast", torch.float32), run("reference", torch.float64)
    for name, a, b in zip(["y", "abs_sum", "dx", "du", "dv", "dW", "dbias"], fast, exact):
        assert rel(a, b) < 1e-5, name


def test_unaligned_factors_and_float64_use_the_pytorch_function():
    layer = MaskedLinear(8, 2)  # a 4 x 4 outer product reshaped to 2 x 8: factors do not line up
    x, u, v = torch.randn(3, 8), torch.randn(3, 4), torch.randn(3, 4)
    mask = RankOneMask(u, v, "tanh", (2, 8))
    assert not kernel_applies(x, layer.weight, mask)
    aligned = RankOneMask(torch.randn(3, 2), torch.randn(3, 8), "tanh", (2, 8))
    assert kernel_applies(x, layer.weight, aligned)
    as64 = RankOneMask(aligned.u.double(), aligned.v.double(), "tanh", (2, 8))
    assert not kernel_applies(x.double(), layer.weight.double(), as64)
    expected = torch.stack([(layer.weight * torch.tanh(torch.outer(u[i], v[i])).reshape(2, 8)) @ x[i]
                            for i in range(3)]) + layer.bias
    assert rel(layer(x, mask), expected) < 1e-6


@pytest.mark.parametrize("gate", ["tanh", "sigmoid"])
@pytest.mark.parametrize("kind", ["abs", "relu"])
@pytest.mark.parametrize("weighted", [False, True])
def test_mask_sum_kernel_matches_float64(gate, kind, weighted, version):
    torch.manual_seed(1)
    u, v = torch.randn(5, 19), torch.randn(5, 23)
    w = torch.rand(19, 23) if weighted else None
    scale = torch.arange(1.0, 6.0)

    def run(dtype):
        uu, vv = u.to(dtype).requires_grad_(), v.to(dtype).requires_grad_()
        h = RankOneMask(uu, vv, gate, (19, 23)).materialise() if dtype == torch.float64 else None
        if h is None:
            s = dwa_masks.weighted_sum(RankOneMask(uu, vv, gate, (19, 23)), w, kind, 3.0)
        else:  # written out: Σ_i w_i φ(H_i) with φ = |.| or relu(3 ·)
            phi = h.abs() if kind == "abs" else torch.relu(3.0 * h)
            s = (phi if w is None else phi * w.double()).flatten(1).sum(1)
        return [s, *torch.autograd.grad((s * scale.to(dtype)).sum(), (uu, vv))]

    for name, a, b in zip(["sum", "du", "dv"], run(torch.float32), run(torch.float64)):
        assert rel(a, b) < 1e-5, name


def test_results_are_bit_identical_on_any_number_of_threads(version):
    """The rows are cut into the same ranges whatever the thread count, and the ranges' partial sums
    (dx, dv) are added in a fixed order: 1, 2, 3 or 16 threads give the same bits."""
    torch.manual_seed(2)
    batch, n_out, n_in = 5, 203, 97  # more rows than ranges, ranges of unequal length
    x, weight, u, v = (torch.randn(batch, n_in), torch.randn(n_out, n_in), torch.randn(batch, n_out),
                       torch.randn(batch, n_in))
    gy, gs, gr, f = torch.randn(batch, n_out), torch.randn(batch), torch.randn(batch), torch.rand(n_out, n_in)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3, 16):
            torch.set_num_threads(n)
            results.append([*kernels.linear_forward(x, weight, u, v, "tanh", f),
                            *kernels.linear_backward(x, weight, u, v, gy, gs, "tanh", f, gr),
                            *kernels.mask_sum_backward(u, v, weight, "sigmoid", "abs", gs),
                            *kernels.full_product(u, weight[:, 0].contiguous(), f[:, 0].contiguous()),
                            *kernels.full_product_backward(u, weight[:, 0].contiguous(), f[:, 0].contiguous(),
                                                           gy, gs, gr)])
    finally:
        torch.set_num_threads(threads)
    assert len(results[0]) == 14
    for other in results[1:]:
        for a, b in zip(other, results[0]):
            assert torch.equal(a, b)


@pytest.mark.parametrize("sizes", SIZES, ids=["small", "row-blocks"])
@pytest.mark.parametrize("gate", ["tanh", "sigmoid"])
def test_fused_plasticity_term_matches_float64(gate, sizes, version):
    """With relu_weight F the layer also returns r_b = Σ F ⊙ relu(H_b): value and every gradient
    (through y, Σ|H| and r together) against the formula written out in float64."""
    torch.manual_seed(3)
    batch, n_out, n_in = sizes
    x, weight, u, v = (torch.randn(batch, n_in), torch.randn(n_out, n_in), torch.randn(batch, n_out),
                       torch.randn(batch, n_in))
    f = torch.rand(n_out, n_in)
    coeff = [torch.randn(batch, n_out), torch.randn(batch), torch.randn(batch)]

    def run(dtype):
        leaves = [t.to(dtype).requires_grad_() for t in (x, weight, u, v)]
        xx, ww, uu, vv = leaves
        if dtype == torch.float32:
            mask = RankOneMask(uu, vv, gate, (n_out, n_in), relu_weight=f)
            lay = MaskedLinear(n_in, n_out)
            lay.weight = torch.nn.Parameter(ww)
            lay.bias.requires_grad_(False)
            y, s, r = lay(xx, mask), mask.abs_sum, mask.relu_sum
        else:
            h = RankOneMask(uu, vv, gate, (n_out, n_in)).materialise()
            y = torch.einsum("boi,bi->bo", ww * h, xx)
            s, r = h.abs().flatten(1).sum(1), (f.double() * torch.relu(h)).flatten(1).sum(1)
        loss = sum((out * c.to(dtype)).sum() for out, c in zip((y, s, r), coeff))
        grads = torch.autograd.grad(loss, [xx, lay.weight if dtype == torch.float32 else ww, uu, vv])
        return [y, s, r, *grads]

    for name, a, b in zip(["y", "abs_sum", "relu_sum", "dx", "dW", "du", "dv"], run(torch.float32),
                          run(torch.float64)):
        assert rel(a, b) < 1e-5, name


def test_network_with_plasticity_weights_gives_the_same_loss_and_gradients():
    """DWA hands its Fisher to the network (plasticity_weights): the fused layers compute the
    plasticity term in their own pass; the loss and every gradient equal those of the separate
    reduction (no plasticity_weights) to float32 rounding."""
    torch.manual_seed(4)
    net = build("mlp", "dwa", (1, 4, 4), [2, 2], params={"hidden": 16})  # 16 x 16: factors aligned
    x = torch.randn(6, 1, 4, 4)
    fisher = {n: torch.rand_like(p) for n, p in net.named_parameters() if n in net.masked_weight_names()}
    results = []
    for weights in (None, fisher):
        net.plasticity_weights = weights
        net.zero_grad()
        out = net(x, 1)
        if weights is not None:
            assert all(m.relu_sum is not None for m in net.state.masks.values())
        loss = out.sum() + plasticity_loss(net.state, fisher) + sparsity_loss(net.state)
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in net.named_parameters()
                                        if p.grad is not None}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert rel(loss_b, loss_a) < 1e-6
    assert grads_a.keys() == grads_b.keys() and "fc1.weight" in grads_a
    for name in grads_a:
        assert rel(grads_b[name], grads_a[name]) < 1e-5, name


def test_paper_size_network_fast_equals_reference(version):
    """The mixture-size DWA AlexNet (28.8 M parameters), batch 3: outputs, the mask losses and every
    parameter's gradient, fast (kernels) vs reference (materialised per-sample weights), both float32."""
    torch.manual_seed(0)
    nets = [build("alexnet", "dwa", (3, 32, 32), MIXTURE, params={"masked_impl": impl})
            for impl in ("fast", "reference")]
    nets[1].load_state_dict(nets[0].state_dict())
    x = torch.randn(3, 3, 32, 32)
    names = nets[0].masked_weight_names()
    fisher = {n: torch.rand_like(p) for n, p in nets[0].named_parameters() if n in names}
    results = []
    for net in nets:
        out = net(x, 2)
        state = net.state
        if net is nets[1]:
            state = DWAState(state.embedding, {n: FullMask(m.materialise()) for n, m in state.masks.items()})
        terms = [out.pow(2).mean(), plasticity_loss(state, fisher), sparsity_loss(state, 0.1)]
        sum(terms).backward()
        results.append((out, terms, {n: p.grad for n, p in net.named_parameters() if p.grad is not None}))
    (out_f, terms_f, grads_f), (out_r, terms_r, grads_r) = results
    assert isinstance(nets[0].state.masks["fc2.weight"], RankOneMask)
    assert rel(out_f, out_r) < 1e-5
    for a, b in zip(terms_f, terms_r):
        assert abs(float(a.detach() - b.detach())) <= 1e-5 * abs(float(b.detach())) + 1e-7
    assert grads_f.keys() == grads_r.keys() and len(grads_f) > 20
    for name in grads_r:
        assert rel(grads_f[name], grads_r[name]) < 1e-5, name


def test_without_kernels_the_layers_fall_back(monkeypatch):
    monkeypatch.setitem(kernels._state, "lib", None)
    monkeypatch.setitem(kernels._state, "reason", "disabled for the test")
    layer = MaskedLinear(5, 4)
    x, u, v = torch.randn(2, 5), torch.randn(2, 4), torch.randn(2, 5)
    mask = RankOneMask(u, v, "sigmoid", (4, 5))
    assert not kernel_applies(x, layer.weight, mask)
    expected = torch.stack([(layer.weight * torch.sigmoid(torch.outer(u[i], v[i]))) @ x[i] for i in range(2)])
    assert rel(layer(x, mask), expected + layer.bias) < 1e-6
    assert kernels.unavailable_reason() == "disabled for the test"


def test_build_failure_is_reported_not_raised(monkeypatch, tmp_path):
    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setenv("DWA_CORE_KERNEL_DIR", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    assert kernels.rank_one() is None
    assert "no C compiler" in kernels.unavailable_reason()
    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setenv("CC", "false")  # exists, always fails
    assert kernels.rank_one() is None and "compilation failed" in kernels.unavailable_reason()
    assert not list(tmp_path.glob("*.so"))
    with pytest.warns(RuntimeWarning, match="kernels .* unavailable"):
        assert not kernels.applies(torch.ones(2))
    assert not kernels.applies(torch.ones(2, dtype=torch.float64))  # not applicable: no warning needed
    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setenv("DWA_CORE_KERNELS", "0")
    assert kernels.rank_one() is None and "DWA_CORE_KERNELS=0" in kernels.unavailable_reason()


class _PoolOnly:
    """The loaded library, reporting a build without OpenMP: kernels then run one range per call on the
    Python thread pool."""

    def __init__(self, lib):
        self._lib = lib

    def __getattr__(self, name):
        return getattr(self._lib, name)

    @staticmethod
    def rank_one_parallel():
        return 0


def test_the_thread_pool_path_gives_the_openmp_path_bits(monkeypatch):
    """Without OpenMP the ranges run one per call on a Python thread pool; the ranges and the order
    in which their partial sums are added are the same, so are the bits."""
    if not kernels.parallel():
        pytest.skip("this build has no OpenMP: the thread pool is the only path")
    torch.manual_seed(4)
    batch, n_out, n_in = 6, 131, 77
    x, weight, u, v = (torch.randn(batch, n_in), torch.randn(n_out, n_in), torch.randn(batch, n_out),
                       torch.randn(batch, n_in))
    gy, gs, gr, f = torch.randn(batch, n_out), torch.randn(batch), torch.randn(batch), torch.rand(n_out, n_in)

    def run():
        fisher_sum = torch.zeros(n_out, n_in)
        dx = kernels.fisher(x, weight, u, v, gy, "tanh", fisher_sum, True)
        return [*kernels.linear_forward(x, weight, u, v, "tanh", f),
                *kernels.linear_backward(x, weight, u, v, gy, gs, "tanh", f, gr),
                kernels.mask_sum_forward(u, v, weight, "sigmoid", "relu"),
                *kernels.mask_sum_backward(u, v, weight, "sigmoid", "abs", gs), dx, fisher_sum]

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        expected = run()
        monkeypatch.setitem(kernels._state, "lib", _PoolOnly(kernels.rank_one()))
        assert not kernels.parallel()
        got = run()
    finally:
        torch.set_num_threads(threads)
    assert len(got) == len(expected) == 12
    for a, b in zip(got, expected):
        assert torch.equal(a, b)


@pytest.mark.parametrize("forms", [("paper", "paper"), ("paper", "binary"), ("original-code", "paper")])
def test_full_mask_terms_give_autograds_bits(forms):
    """A full mask's loss statistics computed by the layer (full_mask_terms: one C pass in the backward)
    give the losses and the gradient of H that autograd gives when the losses reduce H themselves,
    bit for bit, with the layer's own product W ⊙ H in the graph as in the network."""
    from dwa_core.functional.dwa_masks import plasticity_loss, sparsity_loss
    from dwa_core.models.dwa import DWAState
    from dwa_core.models.masked import FullMask, full_mask_terms

    plasticity_form, sparsity_form = forms
    torch.manual_seed(5)
    shape = (6, 5, 3, 3)
    pre, weight, gy = torch.randn(4, *shape), torch.randn(shape), torch.randn(4, *shape)
    fisher = {"c.weight": torch.rand(shape)}

    def run(fused: bool):
        h = torch.tanh(pre).requires_grad_()
        mask = FullMask(h)
        mask.relu_weight = fisher["c.weight"]
        w = weight * mask.materialise()
        if fused:
            full_mask_terms(mask)
            assert mask.abs_sum is not None and mask.relu_sum is not None
        state = DWAState(torch.zeros(4, 3), {"c.weight": mask})
        terms = [plasticity_loss(state, fisher, form=plasticity_form),
                 sparsity_loss(state, mu=0.0, form=sparsity_form)]
        loss = (w * gy).sum() + terms[0] + terms[1]
        return [*terms, torch.autograd.grad(loss, h)[0]]

    expected, got = run(False), run(True)
    for a, b in zip(got, expected):
        assert torch.equal(a, b)
    assert (got[-1] != 0).all()


def test_a_build_that_does_not_load_gives_way_to_the_next_flag_set(monkeypatch, tmp_path):
    """A build that compiles but cannot be loaded (an OpenMP runtime older than the compiler's, say) is
    passed over for the next flag set, and the failure is kept for unavailable_reason."""
    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setenv("DWA_CORE_KERNEL_DIR", str(tmp_path))
    monkeypatch.setattr(kernels, "FLAG_SETS", (("-O3", "-fopenmp-simd"), ("-O3",)))
    declare, loaded = kernels._declare, []

    def declare_all_but_the_first(lib):
        loaded.append(lib)
        if len(loaded) == 1:
            raise OSError("undefined symbol: GOMP_test")
        return declare(lib)

    monkeypatch.setattr(kernels, "_declare", declare_all_but_the_first)
    assert kernels.rank_one() is not None and len(loaded) == 2
    assert len(list(tmp_path.glob("rank_one-*.so"))) == 2
    assert not kernels.parallel()  # the second set has no OpenMP

    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setattr(kernels, "_declare", lambda lib: (_ for _ in ()).throw(OSError("no GOMP")))
    assert kernels.rank_one() is None
    reason = kernels.unavailable_reason()
    assert reason.count("cannot load") == 2 and "no GOMP" in reason


def test_full_mask_terms_refuse_a_plasticity_weight_of_another_shape():
    from dwa_core.models.masked import FullMask, full_mask_terms

    mask = FullMask(torch.rand(2, 3, 4).requires_grad_())
    mask.relu_weight = torch.rand(4, 3)
    with pytest.raises(ValueError, match=r"relu_weight: expected the mask's shape \(3, 4\), got \(4, 3\)"):
        full_mask_terms(mask)


def test_the_kernels_tanh_keeps_its_gradient_factor_in_saturation(version):
    """kernels.full_tanh (rank_one.c's tanh, the masks' gate: tanh_f under numerics 3, tanh_exp2 under
    5): within 2.5e-7 of tanh, relative, from 1e-30 to ±40; odd; never beyond ±1; 0 at 0; and its
    1 - H², the gradient's factor, unbiased where the masks saturate: for |z| in 4..8 its mean relative
    error is below 1 % (a rational tanh within 1e-6 of tanh was +35 % there for |z| in 6..8, and
    changed DWA's results)."""
    tiny = torch.tensor([0.0, 1e-30, 1e-8, -1e-6, 1e-4, -1e-3, 0.124, 0.126])
    z = torch.cat([torch.linspace(-40, 40, 400_001), tiny, -tiny])[None]
    h = kernels.full_tanh(z.contiguous())
    exact = torch.tanh(z.double())
    err = ((h.double() - exact).abs() / exact.abs().clamp(min=1e-300)).max()
    assert err < 2.5e-7, err
    assert torch.equal(kernels.full_tanh((-z).contiguous()), -h)
    assert h.abs().max() == 1.0 and h[0, -2 * len(tiny)] == 0
    for low, high in ((4.0, 6.0), (6.0, 8.0)):
        zs = torch.linspace(low, high, 100_001)[None]
        factor = 1 - kernels.full_tanh(zs.contiguous()).double() ** 2
        exact_factor = 1 - torch.tanh(zs.double()) ** 2
        assert abs(float(((factor - exact_factor) / exact_factor).mean())) < 0.01, (low, high)


@pytest.mark.parametrize("sigmoid", [False, True])
def test_full_masks_under_numerics_5_match_float64(monkeypatch, sigmoid):
    """Under numerics 5 a conv layer's full mask takes the C passes (its tanh, adding the generator's
    bias, and W ⊙ H with Σ|H| and Σ F relu(H), in one pass in the layer): the layer's output,
    both statistics and the gradients of the weight, the generator (weight and bias) and the input,
    against the formula written out in float64."""
    from torch import nn

    from dwa_core.models.dwa import FullGenerator
    from dwa_core.models.masked import MaskedConv2d

    monkeypatch.setattr(numerics, "VERSION", 5)
    torch.manual_seed(6)
    layer, gen = MaskedConv2d(5, 7, 3), FullGenerator(4, (7, 5, 3, 3))
    e, x, f = torch.randn(3, 4), torch.randn(3, 5, 6, 6), torch.rand(7, 5, 3, 3)
    coeff = [torch.randn(3, 7, 4, 4), torch.randn(3), torch.randn(3)]
    gate = "sigmoid" if sigmoid else "tanh"

    def run(dtype):
        lay, g = MaskedConv2d(5, 7, 3).to(dtype), FullGenerator(4, (7, 5, 3, 3)).to(dtype)
        lay.load_state_dict(layer.state_dict())
        g.load_state_dict(gen.state_dict())
        ee, xx = e.to(dtype).requires_grad_(), x.to(dtype).requires_grad_()
        mask = g(ee, gate)
        if dtype == torch.float32:
            mask.relu_weight = f
            y = lay(xx, mask)
            s, r = mask.abs_sum, mask.relu_sum
            gate_node = mask.h.grad_fn.next_functions[0][0]  # under the view to the mask shape
            if sigmoid:  # the generator gates, the layer's pass makes W ⊙ H
                assert type(s.grad_fn).__name__ == "_FullMaskProductBackward" and r is not None
                assert type(gate_node).__name__ == "SigmoidBackward0"
            else:  # the layer gates the generator's pre-activation in the pass that makes W ⊙ H
                assert type(s.grad_fn).__name__ == "_FullTanhProductBackward" and r is not None
                assert gate_node is s.grad_fn
        else:
            h = mask.h
            y = nn.functional.conv2d(xx.reshape(1, -1, 6, 6), (lay.weight * h).reshape(-1, 5, 3, 3), groups=3)
            y = y.view(3, 7, 4, 4) + lay.bias[:, None, None]
            s, r = h.abs().flatten(1).sum(1), (torch.relu(h) * f.double()).flatten(1).sum(1)
        loss = sum((out * c.to(dtype)).sum() for out, c in zip((y, s, r), coeff))
        return [y, s, r, *torch.autograd.grad(loss, [lay.weight, g.linear.weight, g.linear.bias, ee, xx])]

    for name, a, b in zip(["y", "abs_sum", "relu_sum", "dW", "dgenerator", "dgenerator bias", "de", "dx"],
                          run(torch.float32),
                          run(torch.float64)):
        assert rel(a, b) < 1e-5, name


@pytest.mark.parametrize("reader", ["none", "one", "two"])
def test_the_one_pass_full_mask_gives_the_two_passes_bits(monkeypatch, reader):
    """Under numerics 5 the layer gates a full mask in the pass that makes W ⊙ H (_FullTanhProduct);
    reading mask.h before the layer gates it alone (_FullTanh, then _FullMaskProduct). Output, loss
    statistics and every gradient are the same bits either way, also when the loss reads H directly
    (once or twice: autograd sums those gradients before the product's)."""
    from dwa_core.models.dwa import FullGenerator
    from dwa_core.models.masked import MaskedConv2d

    monkeypatch.setattr(numerics, "VERSION", 5)
    torch.manual_seed(9)
    layer, gen = MaskedConv2d(5, 7, 3), FullGenerator(4, (7, 5, 3, 3))
    e, x, f = torch.randn(6, 4), torch.randn(6, 5, 6, 6), torch.rand(7, 5, 3, 3)

    def run(gate_first: bool):
        ee, xx = e.clone().requires_grad_(), x.clone().requires_grad_()
        mask = gen(ee, "tanh")
        assert mask.pre is not None  # the generator left the tanh to the layer
        if gate_first:
            mask.h
        mask.relu_weight = f
        y = layer(xx, mask)
        loss = (y * y).sum() + 0.3 * mask.abs_sum.sum() + 0.7 * mask.relu_sum.sum()
        if reader != "none":
            loss = loss + (mask.h ** 2).sum()
        if reader == "two":
            loss = loss + mask.h.sum()
        grads = torch.autograd.grad(loss, [layer.weight, gen.linear.weight, gen.linear.bias, ee, xx])
        return [y, mask.h, mask.abs_sum, mask.relu_sum, *grads], type(mask.abs_sum.grad_fn).__name__

    (one_pass, node), (two_passes, other) = run(False), run(True)
    assert (node, other) == ("_FullTanhProductBackward", "_FullMaskProductBackward")
    for name, a, b in zip(["y", "H", "abs_sum", "relu_sum", "dW", "dgenerator", "dbias", "de", "dx"],
                          one_pass, two_passes):
        assert torch.equal(a, b), name


def test_a_dense_full_mask_under_numerics_5_matches_float64(monkeypatch):
    """A dense layer's full mask (DWA without use_combination) takes the same C passes under
    numerics 5: output, Σ|H| and the gradients of W, the generator and the input against float64."""
    from dwa_core.models.dwa import FullGenerator

    monkeypatch.setattr(numerics, "VERSION", 5)
    torch.manual_seed(8)
    layer, gen = MaskedLinear(6, 5), FullGenerator(4, (5, 6))
    e, x, coeff = torch.randn(3, 4), torch.randn(3, 6), [torch.randn(3, 5), torch.randn(3)]

    def run(dtype):
        lay, g = MaskedLinear(6, 5).to(dtype), FullGenerator(4, (5, 6)).to(dtype)
        lay.load_state_dict(layer.state_dict())
        g.load_state_dict(gen.state_dict())
        ee, xx = e.to(dtype).requires_grad_(), x.to(dtype).requires_grad_()
        mask = g(ee, "tanh")
        if dtype == torch.float32:
            y, s = lay(xx, mask), mask.abs_sum
            assert type(s.grad_fn).__name__ == "_FullTanhProductBackward"  # the tanh in the product's pass
        else:
            y = torch.einsum("boi,bi->bo", lay.weight * mask.h, xx) + lay.bias
            s = mask.h.abs().flatten(1).sum(1)
        loss = (y * coeff[0].to(dtype)).sum() + (s * coeff[1].to(dtype)).sum()
        return [y, s, *torch.autograd.grad(loss, [lay.weight, g.linear.weight, g.linear.bias, ee, xx])]

    names = ["y", "abs_sum", "dW", "dgenerator", "dgenerator bias", "de", "dx"]
    for name, a, b in zip(names, run(torch.float32), run(torch.float64)):
        assert rel(a, b) < 1e-5, name


def test_numerics_5_changes_the_bits_not_the_values(monkeypatch):
    """The DWA AlexNet's output and gradients under numerics 3 and 5: not the same bits (the switch
    is live), the same values to float32 rounding."""
    torch.manual_seed(7)
    net = build("alexnet", "dwa", (3, 32, 32), MIXTURE)
    x = torch.randn(2, 3, 32, 32)
    fisher = {n: torch.rand_like(p) for n, p in net.named_parameters() if n in net.masked_weight_names()}
    net.plasticity_weights = fisher
    results = []
    for v in (3, 5):
        monkeypatch.setattr(numerics, "VERSION", v)
        net.zero_grad()
        out = net(x, 1)
        (out.pow(2).mean() + plasticity_loss(net.state, fisher) + sparsity_loss(net.state, 0.1)).backward()
        results.append([out.detach()] + [p.grad.clone() for p in net.parameters() if p.grad is not None])
    assert len(results[0]) > 20
    assert any(not torch.equal(a, b) for a, b in zip(*results))
    for a, b in zip(*results):
        assert rel(b, a) < 1e-5


@pytest.mark.parametrize("version", [numerics.VERSION, numerics.other()])
def test_the_fisher_kernel_matches_float64_with_inactive_rows_across_blocks(version):
    """kernels.fisher against Σ_b (tanh(u_b v_bᵀ) ⊙ gy_b x_bᵀ)² and (W ⊙ H_b)ᵀ gy_b computed in float64
    by hand, on 70 rows (two blocks of 32 and a partial one) where gy is 0 for about half of them and
    for whole samples (the kernel skips those rows four at a time, then one by one)."""
    gen = torch.Generator().manual_seed(7)
    batch, n_out, n_in = 5, 70, 37
    x, weight, u, v = (torch.randn(batch, n_in, generator=gen), torch.randn(n_out, n_in, generator=gen),
                       torch.randn(batch, n_out, generator=gen), torch.randn(batch, n_in, generator=gen))
    gy = torch.randn(batch, n_out, generator=gen) * (torch.rand(batch, n_out, generator=gen) > 0.5)
    gy[2] = 0.0  # a sample whose rows are all off
    h = torch.tanh(u.double()[:, :, None] * v.double()[:, None, :])  # (B, O, I)
    expected_f = (h * gy.double()[:, :, None] * x.double()[:, None, :]).pow(2).sum(0)
    expected_dx = torch.einsum("boi,bo->bi", weight.double() * h, gy.double())
    with numerics.using(version):
        fisher_sum = torch.zeros(n_out, n_in)
        dx = kernels.fisher(x, weight, u, v, gy, "tanh", fisher_sum, True)
        fisher_only = torch.zeros(n_out, n_in)
        assert kernels.fisher(x, weight, u, v, gy, "tanh", fisher_only, False) is None
    assert torch.allclose(fisher_sum.double(), expected_f, rtol=1e-5, atol=1e-6)
    assert torch.equal(fisher_only, fisher_sum)
    assert torch.allclose(dx.double(), expected_dx, rtol=1e-5, atol=1e-5)
    assert torch.all(dx[2] == 0.0)
