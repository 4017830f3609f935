"""Dataset sources through their real readers on tiny files in the real on-disk formats."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_data import (
    write_cifar10,
    write_cifar100,
    write_facescrub,
    write_mnist_like,
    write_not_mnist,
    write_svhn,
    write_traffic_signs,
)

from dwa_core.data import cache, sources

FASHION_SYSTEM = Path("/usr/share/datasets/fashion-mnist")


def _check_labels(raw, n_classes, train_per_class, test_per_class):
    assert raw.train_y.dtype == torch.int64 and raw.test_y.dtype == torch.int64
    assert torch.bincount(raw.train_y).tolist() == [train_per_class] * n_classes
    assert torch.bincount(raw.test_y).tolist() == [test_per_class] * n_classes
    assert raw.n_classes == n_classes


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw")])
def test_idx_sources(tmp_path, name, folder):
    write_mnist_like(tmp_path / folder)
    raw = getattr(sources, name)(tmp_path)
    assert raw.train_x.shape == (30, 1, 28, 28) and raw.train_x.dtype == torch.uint8
    _check_labels(raw, 10, 3, 2)
    # image of label 9 is filled with 9*200//9+30 = 230
    assert raw.train_x[raw.train_y == 9].unique().tolist() == [230]
    x32 = sources.to_32x32x3(raw.test_x)
    assert x32.shape == (20, 3, 32, 32)
    assert x32[:, :, :2].sum() == 0 and x32[:, :, -2:].sum() == 0 and x32[..., :2].sum() == 0
    assert torch.equal(x32[:, 0, 2:30, 2:30], raw.test_x[:, 0]) and torch.equal(x32[:, 0], x32[:, 2])


def test_cifar_sources(tmp_path):
    write_cifar10(tmp_path)
    write_cifar100(tmp_path)
    c10, c100 = sources.cifar10(tmp_path), sources.cifar100(tmp_path)
    assert c10.train_x.shape == (50, 3, 32, 32) and c10.test_x.shape == (20, 3, 32, 32)
    _check_labels(c10, 10, 5, 2)
    _check_labels(c100, 100, 2, 1)
    # channel c of a label-3 CIFAR-10 image is filled with 3*200//9+30 + c = 96 + c
    img = c10.train_x[c10.train_y == 3][0]
    assert [img[c].unique().tolist() for c in range(3)] == [[96], [97], [98]]


def test_svhn_source(tmp_path):
    write_svhn(tmp_path / "svhn")
    raw = sources.svhn(tmp_path)
    assert raw.train_x.shape == (30, 3, 32, 32) and raw.train_x.dtype == torch.uint8
    _check_labels(raw, 10, 3, 2)  # the stored 10 became label 0
    assert (raw.train_x[:, 2, 0, 1] == 7).all()  # .mat (H, W, C, N) -> (N, C, H, W)
    assert raw.train_x[raw.train_y == 0][0, 0, 5, 5] == 30


def test_traffic_signs_source(tmp_path):
    write_traffic_signs(tmp_path)
    raw = sources.traffic_signs(tmp_path)
    assert raw.train_x.shape == (86, 3, 32, 32) and raw.test_x.shape == (43, 3, 32, 32)
    _check_labels(raw, 43, 2, 1)
    assert (raw.train_x[:, 2, 0, 1] == 7).all()  # HWC -> CHW


@pytest.mark.parametrize("name,writer,shape,n_classes", [
    ("not_mnist", write_not_mnist, (30, 1, 32, 32), 10),
    ("facescrub", write_facescrub, (200, 3, 32, 32), 100)])
def test_int8_pickle_sources(tmp_path, name, writer, shape, n_classes):
    writer(tmp_path)
    raw = getattr(sources, name)(tmp_path)
    assert raw.train_x.shape == shape and raw.train_x.dtype == torch.uint8
    last = raw.train_x[raw.train_y == n_classes - 1]
    assert last.unique().tolist() == [230]  # stored as int8 -26, read back as uint8 230
    assert torch.bincount(raw.train_y).shape == (n_classes,)


def test_normalise_by_hand():
    x = torch.tensor([0, 255, 51], dtype=torch.uint8).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    out = sources.normalise(x, (0.5, 0.0, 0.2), (0.25, 1.0, 0.5))
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([-2.0, 2.0, -1.2]))
    torch.testing.assert_close(out[0, 1, 0], torch.tensor([0.0, 1.0, 0.2]))
    torch.testing.assert_close(out[0, 2, 0], torch.tensor([-0.4, 1.6, 0.0]))
    assert out.dtype == torch.float32


def test_paper_normalisation_table():
    assert sources.NORMALISATION["mnist"] == ((0.1,), (0.2752,))
    assert sources.NORMALISATION["svhn"] == ((0.4377, 0.4438, 0.4728), (0.198, 0.201, 0.197))
    assert sources.NORMALISATION["cifar100"][0][0] == pytest.approx(125.3 / 255)
    assert sources.MNIST_28 == ((0.1307,), (0.3081,))
    assert len(sources.NORMALISATION) == 8


def test_offline_missing_dataset_names_places(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DIRS", (tmp_path / "system",))
    with pytest.raises(sources.DatasetNotFoundError) as info:
        sources.fashion_mnist(tmp_path / "data")
    message = str(info.value)
    assert "fashion_mnist" in message and "download=True" in message
    assert "apt-get install dataset-fashion-mnist" in message
    for place in (tmp_path / "data" / "FashionMNIST" / "raw", tmp_path / "system" / "fashion-mnist"):
        assert str(place) in message
    assert isinstance(info.value, FileNotFoundError)


def test_default_data_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DWA_DATA", str(tmp_path))
    assert sources.default_data_dir() == tmp_path
    write_mnist_like(tmp_path / "MNIST" / "raw")
    assert sources.mnist().train_x.shape[0] == 30


def test_data_dir_is_searched_before_system(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "sys" / "fashion-mnist", per_class=(1, 1))
    write_mnist_like(tmp_path / "data" / "FashionMNIST" / "raw", per_class=(2, 1))
    monkeypatch.setattr(sources, "SYSTEM_DIRS", (tmp_path / "sys",))
    assert len(sources.fashion_mnist(tmp_path / "data").train_y) == 20
    assert len(sources.fashion_mnist(tmp_path / "empty").train_y) == 10


def _counting_read(monkeypatch):
    calls = []
    real = sources.read
    monkeypatch.setattr(sources, "read", lambda name, folder: calls.append(name) or real(name, folder))
    return calls


def test_second_load_uses_cache(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    calls = _counting_read(monkeypatch)
    first = sources.cifar10(tmp_path)
    second = sources.cifar10(tmp_path)
    assert calls == ["cifar10"]  # decoded once
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.test_y, second.test_y)
    assert (tmp_path / "cache" / "cifar10.pt").is_file()
    assert (tmp_path / "cache" / "cifar10.pt.sha256").read_text().strip().isalnum()


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch, caplog, damage):
    write_mnist_like(tmp_path / "MNIST" / "raw")
    calls = _counting_read(monkeypatch)
    expected = sources.mnist(tmp_path)
    path = tmp_path / "cache" / "mnist.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else data[:-5] + b"xxxxx")
    with caplog.at_level(logging.WARNING, logger="dwa_core.data.cache"):
        again = sources.mnist(tmp_path)
    assert "sha256" in caplog.text and calls == ["mnist", "mnist"]
    assert torch.equal(again.train_x, expected.train_x)
    assert cache.load("mnist", tmp_path / "cache") is not None  # rewritten valid
    sources.mnist(tmp_path)
    assert calls == ["mnist", "mnist"]


@pytest.mark.skipif(not FASHION_SYSTEM.is_dir(), reason="real Fashion-MNIST not installed "
                    "(apt-get install dataset-fashion-mnist puts it in /usr/share/datasets/fashion-mnist)")
def test_real_fashion_mnist_from_debian(tmp_path):
    raw = sources.fashion_mnist(tmp_path)  # empty data dir: found in the system directory
    assert raw.train_x.shape == (60000, 1, 28, 28) and raw.test_x.shape == (10000, 1, 28, 28)
    assert len(raw.train_y) + len(raw.test_y) == 70000
    assert torch.bincount(raw.train_y).tolist() == [6000] * 10
    assert torch.bincount(raw.test_y).tolist() == [1000] * 10
    # the docs/original-code.md#benchmarks statistics of the padded 3x32x32 training images: 0.2190 / 0.3318
    x = sources.to_32x32x3(raw.train_x[:, :1]).float() / 255
    assert x.mean().item() == pytest.approx(0.2190, abs=2e-3)
    assert x.std().item() == pytest.approx(0.3318, abs=2e-3)
    assert np.issubdtype(raw.train_x.numpy().dtype, np.uint8)


def test_download_fetches_the_papers_url(tmp_path, monkeypatch):
    import urllib.request

    fetched = []

    def fake_urlretrieve(url, target):
        fetched.append(url)
        made = write_not_mnist(tmp_path / "made")
        Path(target).write_bytes(made.read_bytes())

    monkeypatch.setattr(urllib.request, "urlretrieve", fake_urlretrieve)
    raw = sources.not_mnist(tmp_path / "data", download=True)
    assert fetched == ["https://github.com/nkundiushuti/notmnist_convert/blob/master/notmnist.zip?raw=true"]
    assert (tmp_path / "data" / "notmnist" / "notmnist.zip").is_file()
    assert raw.train_x.shape == (30, 1, 32, 32)
