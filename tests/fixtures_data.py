"""Writers of tiny dataset files in the real on-disk formats (IDX gz, CIFAR pickles, SVHN .mat,
pickles in zips). Image i of a fixture has every pixel = PIXEL(i, label) so tests can check layout."""

from __future__ import annotations

import gzip
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np


def labels_for(n_classes: int, per_class: int) -> np.ndarray:
    return np.repeat(np.arange(n_classes), per_class)


def pixel(label, n_classes):
    """A distinct non-zero grey level per class."""
    return (np.asarray(label) * 200 // max(n_classes - 1, 1) + 30).astype(np.uint8)


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: 0, 0, 0x08 (unsigned byte), ndim, then big-endian int32 sizes and the raw bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_mnist_like(folder: Path, per_class=(3, 2)) -> Path:
    """train/t10k IDX gz files with 10 classes; image of label c is 28x28 filled with pixel(c)."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, k in (("train", per_class[0]), ("t10k", per_class[1])):
        y = labels_for(10, k)
        x = np.broadcast_to(pixel(y, 10)[:, None, None], (len(y), 28, 28))
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", y)
    return folder


def _dump(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def _cifar_rows(y, n_classes):
    """(N, 3072) rows: channel c of image i filled with pixel(y) + c (row layout R..., G..., B...)."""
    base = pixel(y, n_classes).astype(np.int64)[:, None, None] + np.arange(3)[None, :, None]
    return np.broadcast_to(base, (len(y), 3, 1024)).reshape(len(y), 3072).astype(np.uint8)


def write_cifar10(root: Path, per_class=(5, 2)) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    y = labels_for(10, per_class[0])
    for i, part in enumerate(np.array_split(np.arange(len(y)), 5), start=1):
        _dump(folder / f"data_batch_{i}", {"data": _cifar_rows(y[part], 10), "labels": y[part].tolist()})
    yt = labels_for(10, per_class[1])
    _dump(folder / "test_batch", {"data": _cifar_rows(yt, 10), "labels": yt.tolist()})
    _dump(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    return folder


def write_cifar100(root: Path, per_class=(2, 1)) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, k in (("train", per_class[0]), ("test", per_class[1])):
        y = labels_for(100, k)
        _dump(folder / name, {"data": _cifar_rows(y, 100), "fine_labels": y.tolist(),
                              "coarse_labels": (y // 5).tolist()})
    _dump(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)]})
    return folder


def write_svhn(folder: Path, per_class=(3, 2)) -> Path:
    """train/test_32x32.mat: X (32, 32, 3, N), y (N, 1) with digit 0 stored as 10."""
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    for name, k in (("train", per_class[0]), ("test", per_class[1])):
        y = labels_for(10, k)
        x = np.zeros((32, 32, 3, len(y)), np.uint8)
        x[:, :, :, :] = pixel(y, 10)[None, None, None, :]
        x[0, 1, 2, :] = 7  # one marker pixel: row 0, column 1, channel 2
        savemat(folder / f"{name}_32x32.mat", {"X": x, "y": np.where(y == 0, 10, y)[:, None]})
    return folder


def _zip(path: Path, members: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, obj in members.items():
            buffer = io.BytesIO()
            pickle.dump(obj, buffer)
            archive.writestr(name, buffer.getvalue())
    return path


def write_traffic_signs(root: Path, per_class=(2, 1)) -> Path:
    """traffic-sign-data.zip with 'lab 2 data/{train,test}.p': features (N, 32, 32, 3) uint8."""
    def split(k):
        y = labels_for(43, k)
        x = np.broadcast_to(pixel(y, 43)[:, None, None, None], (len(y), 32, 32, 3)).copy()
        x[:, 0, 1, 2] = 7  # marker at row 0, column 1, channel 2
        return {"features": x, "labels": y}
    return _zip(root / "traffic_signs" / "traffic-sign-data.zip",
                {"lab 2 data/train.p": split(per_class[0]), "lab 2 data/test.p": split(per_class[1])})


def _int8_split(n_classes, k, channels):
    """features (N, C, 32, 32) stored through int8 like the HAT packaging (bytes > 127 negative)."""
    y = labels_for(n_classes, k)
    x = np.broadcast_to(pixel(y, n_classes)[:, None, None, None], (len(y), channels, 32, 32))
    return {"features": x.astype(np.uint8).view(np.int8), "labels": y}


def write_not_mnist(root: Path, per_class=(3, 2)) -> Path:
    return _zip(root / "notmnist" / "notmnist.zip", {"notmnist_train.pkl": _int8_split(10, per_class[0], 1),
                                                     "notmnist_test.pkl": _int8_split(10, per_class[1], 1)})


def write_facescrub(root: Path, per_class=(2, 1)) -> Path:
    return _zip(root / "facescrub" / "facescrub_100.zip",
                {"facescrub_train_100.pkl": _int8_split(100, per_class[0], 3),
                 "facescrub_test_100.pkl": _int8_split(100, per_class[1], 3)})


def write_all(root: Path) -> Path:
    """Every mixture dataset under `root` in the data-dir layout the sources search."""
    write_mnist_like(root / "MNIST" / "raw")
    write_mnist_like(root / "FashionMNIST" / "raw")
    write_cifar10(root)
    write_cifar100(root)
    write_svhn(root)
    write_traffic_signs(root)
    write_not_mnist(root)
    write_facescrub(root)
    return root
