"""Entropy complexity equals scikit-image's rank entropy; θ schedules by hand."""

import math

import numpy as np
import pytest
import torch

from dwa_core.config import ConfigError
from dwa_core.curriculum import Curriculum, complexity, disk_offsets, local_entropy, select, to_ubyte

skimage = pytest.importorskip("skimage")
from skimage.filters.rank import entropy  # noqa: E402
from skimage.morphology import disk  # noqa: E402


@pytest.mark.parametrize("shape,levels", [((17, 23), 256), ((32, 32), 4), ((9, 12), 2), ((28, 28), 30)])
def test_local_entropy_equals_skimage(shape, levels):
    rng = np.random.default_rng(sum(shape) + levels)
    img = rng.integers(0, levels, size=shape).astype(np.uint8)
    ours = local_entropy(torch.from_numpy(img.astype(np.int64))[None])[0].numpy()
    np.testing.assert_allclose(ours, entropy(img, disk(5)), atol=1e-9)


def test_local_entropy_by_hand():
    assert len(disk_offsets(5)) == int(disk(5).sum())
    two = torch.tensor([[[0, 255]]])  # each pixel sees both: 1 bit
    assert torch.allclose(local_entropy(two), torch.ones(1, 1, 2, dtype=torch.float64))
    assert local_entropy(torch.full((1, 6, 6), 7)).abs().max() < 1e-12


def test_to_ubyte_matches_img_as_ubyte():
    from skimage import img_as_ubyte

    x = torch.linspace(0, 1, 101).reshape(1, 1, 1, 101).double()
    assert to_ubyte(x)[0, 0].tolist() == img_as_ubyte(x[0, 0, 0].numpy()).tolist()
    assert to_ubyte(torch.tensor([[[[-0.5, 2.0]]]])).tolist() == [[[0, 255]]]
    assert to_ubyte(torch.tensor([[[[255.0, 0.0]]]])).tolist() == [[[255, 0]]]  # max > 10: /255


def test_complexity_min_max():
    x = torch.zeros(3, 1, 8, 8)
    x[1, 0, ::2] = 1.0  # stripes: 1 bit almost everywhere
    x[2, 0, :, :4] = 1.0  # half/half: lower entropy
    z = complexity(x)
    assert z[0] == 0 and z[1] == 1 and 0 < z[2] < 1
    assert complexity(torch.zeros(2, 1, 4, 4)).tolist() == [0.0, 0.0]  # range clamped at 1e-4


def test_schedules():
    lin = Curriculum.parse("linear:100:0.2")
    assert (lin.theta(0), lin.theta(50), lin.theta(100), lin.theta(150)) == pytest.approx((0.2, 0.6, 1, 1))
    assert not lin.done(99) and lin.done(100)
    assert Curriculum.parse("exp:100:0.2").theta(50) == pytest.approx(0.2 + 0.8 * 0.25)
    assert Curriculum.parse("exp:100:0.2:3").theta(50) == pytest.approx(0.2 + 0.8 * 0.125)
    log = Curriculum.parse("log:3:0.2")
    assert log.theta(0) == pytest.approx(0.2)  # the original code's ln(0) gave -inf
    assert log.theta(1) == pytest.approx(0.2 + 0.8 * math.log(2) / math.log(4))
    assert log.theta(3) == 1
    assert Curriculum.parse("linear:10").start == 0.2
    for bad in ("cubic:10", "linear", "linear:x", "linear:10:2"):
        with pytest.raises(ConfigError):
            Curriculum.parse(bad)


def test_select():
    z = torch.tensor([0.1, 0.5, 0.3, 1.0])
    assert select(z, 0.3).tolist() == [0, 2]
    assert select(z, 1.0).tolist() == [0, 1, 2, 3]


def test_curriculum_is_a_nested_dataclass_that_still_reads_its_string_form():
    from dwa_core.approaches.dwa import DWAParams
    from dwa_core.config import ConfigError, build_params

    expected = Curriculum("linear", 5, 0.2, 2.0)
    for value in ("linear:5:0.2", {"kind": "linear", "epochs": 5, "start": 0.2}, expected):
        assert build_params(DWAParams, {"curriculum": value}, "approach_params").curriculum == expected
    for none in (None, "", "none"):
        assert DWAParams(curriculum=none).curriculum is None
    assert str(expected) == "linear:5:0.2:2" and Curriculum.parse(str(expected)) == expected
    for bad in ("foo:5", {"kind": "linear", "epochz": 5}, 3):
        with pytest.raises(ConfigError, match="curriculum"):
            DWAParams(curriculum=bad)


def test_switches_are_validated_from_their_literal():
    import typing

    from dwa_core.approaches.dwa import DWAParams
    from dwa_core.config import ConfigError

    hint = typing.get_type_hints(DWAParams)["sparsity_form"]
    assert typing.get_args(hint) == ("paper", "original-code", "binary")
    message = r"approach_params.sparsity_form: must be one of 'paper', 'original-code', 'binary'"
    with pytest.raises(ConfigError, match=message):
        DWAParams(sparsity_form="bniary")  # direct construction, not only through build_params
