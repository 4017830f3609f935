"""Networks: shapes, one head per task computed alone, weight-init schemes."""

import pytest
import torch
from torch import nn

from dwa_core import ConfigError
from dwa_core.models import build, count_parameters
from dwa_core.models.init import apply_weight_init, parse_weight_init


def test_alexnet_matches_the_papers_size_for_the_mixture():
    classes = [100, 10, 100, 10, 10, 10, 43, 10]  # the mixture's 8 tasks, 293 classes
    model = build("alexnet", "plain", (3, 32, 32), classes)
    # docs/original-code.md#networks: 7.10 M parameters for the mixture
    assert count_parameters(model) == pytest.approx(7.10e6, rel=0.005)
    x = torch.randn(4, 3, 32, 32)
    assert model(x, 6).shape == (4, 43)


def test_mlp_shapes_and_only_the_requested_head_runs():
    model = build("mlp", "plain", (1, 28, 28), [5, 5])
    calls = []
    for i, head in enumerate(model.last.heads):
        head.register_forward_hook(lambda *a, i=i: calls.append(i))
    assert model(torch.randn(3, 1, 28, 28), 1).shape == (3, 5)
    assert calls == [1]


def test_per_sample_task_ids_pad_narrower_heads():
    model = build("mlp", "plain", (1, 8, 8), [2, 3], params={"hidden": 8, "layers": 1})
    out = model(torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 1, 0]))
    assert out.shape == (4, 3)
    assert torch.isinf(out[[0, 3], 2]).all() and torch.isfinite(out[[1, 2]]).all()


def test_weight_init_schemes():
    assert parse_weight_init("kaiming:xavier") == {
        "conv": "kaiming", "conv_bias": "zeros", "linear": "xavier", "linear_bias": "zeros"}
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(4, 5))
    apply_weight_init(model, "ones,ones:zeros,ones")
    assert (model[0].weight == 1).all() and (model[0].bias == 1).all()
    assert (model[1].weight == 0).all() and (model[1].bias == 1).all()
    apply_weight_init(model, "uniform:normal")
    assert 0 <= model[0].weight.min() and model[0].weight.max() < 1 and (model[1].bias == 0).all()
    with pytest.raises(ConfigError, match="unknown scheme 'he'"):
        parse_weight_init("he:xavier")


def test_kaiming_and_xavier_have_their_variances():
    torch.manual_seed(0)
    layer = nn.Linear(400, 300)
    apply_weight_init(nn.Sequential(layer), "kaiming:xavier")
    bound = (6 / (400 + 300)) ** 0.5  # Xavier-uniform
    assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
    conv = nn.Conv2d(64, 64, 3)
    apply_weight_init(nn.Sequential(conv), "kaiming:xavier")
    assert conv.weight.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)  # He-normal


def test_unknown_network_and_bad_params():
    with pytest.raises(ConfigError, match="network"):
        build("resnet", "plain", (1, 8, 8), [2])
    with pytest.raises(ConfigError, match="network_params"):
        build("mlp", "plain", (1, 8, 8), [2], params={"widht": 3})
