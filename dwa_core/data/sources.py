"""The paper's datasets as uint8 arrays (docs/original-code.md#benchmarks): find the files, read them, or
download them.

Every source returns a `RawDataset` of native uint8 images (N, C, H, W) and int64 labels from 0.
`to_32x32x3` applies the mixture's conversion (MNIST-like: zero-pad 28->32, grey copied to 3
channels). Images stay uint8 until a benchmark builds its float tensors (`normalise`).
Search order: the data dir (argument, else $DWA_DATA, else ~/.cache/dwa_core/data), then the
system dataset directories (/usr/share/datasets, Debian's dataset-* packages), then a download
when download=True. Nothing found offline -> DatasetNotFoundError, never a silent fallback.
"""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dwa_core.data.cache import cached
from dwa_core.data.types import RawDataset  # noqa: F401  (the type every source returns)

log = logging.getLogger(__name__)
SYSTEM_DIRS = (Path("/usr/share/datasets"),)

# docs/original-code.md#benchmarks: per-dataset mean / std of the 3x32x32 images (MNIST-like include the
# padding).
NORMALISATION = {
    "cifar10": ((125.3 / 255, 123.0 / 255, 113.9 / 255), (63.0 / 255, 62.1 / 255, 66.7 / 255)),
    "cifar100": ((125.3 / 255, 123.0 / 255, 113.9 / 255), (63.0 / 255, 62.1 / 255, 66.7 / 255)),
    "mnist": ((0.1,), (0.2752,)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.198, 0.201, 0.197)),
    "fashion_mnist": ((0.2190,), (0.3318,)),
    "traffic_signs": ((0.3398, 0.3117, 0.3210), (0.2755, 0.2647, 0.2712)),
    "facescrub": ((0.5163, 0.5569, 0.4695), (0.2307, 0.2272, 0.2479)),
    "not_mnist": ((0.4254,), (0.4501,)),
}
MNIST_28 = ((0.1307,), (0.3081,))  # docs/original-code.md#benchmarks: mnist2 / pmnist at 1x28x28
FASHION_28 = ((0.2860,), (0.3530,))  # Fashion-MNIST's usual 28x28 training statistics

URLS = {
    "traffic_signs": "https://d17h27t6h515a5.cloudfront.net/topher/2016/October/580d53ce_traffic-sign-data/"
                     "traffic-sign-data.zip",
    "facescrub": "https://github.com/nkundiushuti/facescrub_subset/blob/master/data/"
                 "facescrub_100.zip?raw=true",
    "not_mnist": "https://github.com/nkundiushuti/notmnist_convert/blob/master/notmnist.zip?raw=true",
}


# How a user asks for a download, spelled per interface ("{download}" in messages).
DOWNLOAD_SPELLING = {"python": "download=True", "cli": "--set download=true"}


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are in none of the searched places and no download was asked for.
    `str(err)` spells the download switch for Python; `err.message("cli")` for the command line."""

    def __init__(self, template: str):
        self.template = template
        super().__init__(self.message("python"))

    def message(self, interface: str = "python") -> str:
        return self.template.format(download=DOWNLOAD_SPELLING[interface])

    def __str__(self) -> str:
        return self.message("python")


@dataclass(frozen=True)
class Layout:
    """Where a dataset lives: sub-folders of a root and the files that must all be there."""

    subdirs: tuple[str, ...]
    files: tuple[str, ...]
    system: tuple[str, ...] = ()
    how: str = "pass {download}"


IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
       "t10k-labels-idx1-ubyte")
LAYOUTS = {
    "mnist": Layout(("MNIST/raw", "mnist"), IDX, ("mnist",)),
    "fashion_mnist": Layout(("FashionMNIST/raw", "fashion-mnist"), IDX, ("fashion-mnist",),
                            "pass {download}, or `apt-get install dataset-fashion-mnist`"),
    "cifar10": Layout(("cifar-10-batches-py",), ("data_batch_1", "test_batch"), ("cifar-10-batches-py",)),
    "cifar100": Layout(("cifar-100-python",), ("train", "test"), ("cifar-100-python",)),
    "svhn": Layout(("", "svhn", "SVHN"), ("train_32x32.mat", "test_32x32.mat"), ("svhn",)),
    "traffic_signs": Layout(("traffic_signs",), ("traffic-sign-data.zip",), (),
                            f"pass {{download}} or put {URLS['traffic_signs']} there"),
    "facescrub": Layout(("facescrub",), ("facescrub_100.zip",), (),
                        f"pass {{download}} or put {URLS['facescrub']} there"),
    "not_mnist": Layout(("notmnist",), ("notmnist.zip",), (),
                        f"pass {{download}} or put {URLS['not_mnist']} there"),
}


def default_data_dir() -> Path:
    return Path(os.environ.get("DWA_DATA") or Path.home() / ".cache" / "dwa_core" / "data")


def _present(folder: Path, name: str) -> bool:
    """A file counts when present plain or gzipped."""
    return (folder / name).is_file() or (folder / f"{name}.gz").is_file()


def candidates(name: str, data_dir=None) -> list[Path]:
    """Every folder searched for `name`, in order."""
    layout, root = LAYOUTS[name], Path(data_dir) if data_dir else default_data_dir()
    return [root / sub for sub in layout.subdirs] + [d / s for d in SYSTEM_DIRS for s in layout.system]


def find(name: str, data_dir=None, download: bool = False) -> Path:
    """The first folder holding all of `name`'s files; downloads into the data dir if asked."""
    places = candidates(name, data_dir)
    for folder in places:
        if all(_present(folder, f) for f in LAYOUTS[name].files):
            return folder
    if download:
        return _download(name, Path(data_dir) if data_dir else default_data_dir())
    searched = "\n  ".join(str(p).replace("{", "{{").replace("}", "}}") for p in places)
    raise DatasetNotFoundError(f"dataset {name!r} not found; searched:\n  {searched}\n"
                               f"expected files {', '.join(LAYOUTS[name].files)}; to get it: "
                               f"{LAYOUTS[name].how}")


def check_present(names, data_dir=None) -> None:
    """Raise one DatasetNotFoundError naming every dataset of `names` that `find` cannot find, each
    with the folders searched and how to get it: a benchmark of several datasets (mixture, cifar)
    reports all that are missing at once, not one per attempt."""
    missing = []
    for name in names:
        try:
            find(name, data_dir)
        except DatasetNotFoundError as err:
            missing.append(err.template)
    if len(missing) > 1:
        head = f"{len(missing)} of {len(names)} datasets not found:\n"
        raise DatasetNotFoundError(head + "\n".join(missing))
    if missing:
        raise DatasetNotFoundError(missing[0])


def _download(name: str, root: Path) -> Path:
    import torchvision.datasets as tvd

    root.mkdir(parents=True, exist_ok=True)
    torchvision_class = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10,
                         "cifar100": tvd.CIFAR100}.get(name)
    if torchvision_class is not None:
        torchvision_class(str(root), train=True, download=True)
    elif name == "svhn":
        for split in ("train", "test"):
            tvd.SVHN(str(root), split=split, download=True)
    else:
        import urllib.request

        target = root / LAYOUTS[name].subdirs[0] / LAYOUTS[name].files[0]
        target.parent.mkdir(parents=True, exist_ok=True)
        log.info("downloading %s from %s", name, URLS[name])
        urllib.request.urlretrieve(URLS[name], target)
    return find(name, root, download=False)


# ----------------------------------------------------------------------------- readers


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (plain or .gz): magic (0, 0, dtype=0x08 uint8, ndim), ndim big-endian sizes."""
    path = path if path.is_file() else path.with_name(path.name + ".gz")
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
        data = f.read()
    if data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


def _pack(name, n_classes, train_x, train_y, test_x, test_y) -> RawDataset:
    as_x = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.uint8))  # noqa: E731
    as_y = lambda a: torch.from_numpy(np.asarray(a).reshape(-1).astype(np.int64))  # noqa: E731
    return RawDataset(name, n_classes, as_x(train_x), as_y(train_y), as_x(test_x), as_y(test_y))


def _idx_dataset(name: str, folder: Path) -> RawDataset:
    arrays = [read_idx(folder / f) for f in IDX]
    return _pack(name, 10, arrays[0][:, None], arrays[1], arrays[2][:, None], arrays[3])


def _unpickle(path_or_file):
    if isinstance(path_or_file, (str, Path)):
        with open(path_or_file, "rb") as f:
            return pickle.load(f, encoding="latin1")
    return pickle.load(path_or_file, encoding="latin1")


def _cifar(name: str, folder: Path, files: tuple[list[str], str], label_key: str, n_classes: int):
    train = [_unpickle(folder / f) for f in files[0]]
    test = _unpickle(folder / files[1])
    x = lambda batches: np.concatenate(  # noqa: E731
        [np.asarray(b["data"]) for b in batches]).reshape(-1, 3, 32, 32)
    y = lambda batches: np.concatenate([np.asarray(b[label_key]) for b in batches])  # noqa: E731
    return _pack(name, n_classes, x(train), y(train), x([test]), y([test]))


def _zip_pickles(path: Path, names: tuple[str, str]) -> list[dict]:
    """Unpickle members of a zip by base name, wherever they sit inside it."""
    with zipfile.ZipFile(path) as archive:
        members = {Path(m).name: m for m in archive.namelist()}
        out = []
        for n in names:
            if n not in members:
                raise ValueError(f"{path}: no member {n!r} (has {sorted(members)})")
            with archive.open(members[n]) as f:
                out.append(_unpickle(f))
    return out


def _features(d: dict) -> np.ndarray:
    # docs/original-code.md#benchmarks: the pickles store bytes through signed int8; astype wraps them back
    # to 0..255.
    return np.asarray(d["features"]).astype(np.uint8)


def read(name: str, folder: Path) -> RawDataset:
    """Decode `name`'s files in `folder` to a RawDataset (the slow step the cache avoids)."""
    if name in ("mnist", "fashion_mnist"):
        return _idx_dataset(name, folder)
    if name == "cifar10":
        return _cifar(name, folder, ([f"data_batch_{i}" for i in range(1, 6)], "test_batch"), "labels", 10)
    if name == "cifar100":
        return _cifar(name, folder, (["train"], "test"), "fine_labels", 100)
    if name == "svhn":
        from scipy.io import loadmat

        mats = [loadmat(folder / f) for f in LAYOUTS[name].files]
        x = [m["X"].transpose(3, 2, 0, 1) for m in mats]  # (32, 32, 3, N) -> (N, 3, 32, 32)
        y = [m["y"].reshape(-1) % 10 for m in mats]  # the .mat stores digit 0 as 10
        return _pack(name, 10, x[0], y[0], x[1], y[1])
    if name == "traffic_signs":
        train, test = _zip_pickles(folder / LAYOUTS[name].files[0], ("train.p", "test.p"))
        hwc = lambda d: np.asarray(d["features"], np.uint8).transpose(0, 3, 1, 2)  # noqa: E731
        return _pack(name, 43, hwc(train), train["labels"], hwc(test), test["labels"])
    if name in ("facescrub", "not_mnist"):
        pair = ("facescrub_train_100.pkl", "facescrub_test_100.pkl") if name == "facescrub" else \
            ("notmnist_train.pkl", "notmnist_test.pkl")
        train, test = _zip_pickles(folder / LAYOUTS[name].files[0], pair)
        # FaceScrub: kept as stored (HWC bytes reshaped to 3x32x32 without transpose,
        # docs/original-code.md#benchmarks).
        return _pack(name, 100 if name == "facescrub" else 10, _features(train), train["labels"],
                     _features(test), test["labels"])
    raise KeyError(name)


def load_source(name: str, data_dir=None, download: bool = False, cache: bool = True) -> RawDataset:
    """`name`'s native uint8 dataset, from the cache when a valid one exists."""

    folder = find(name, data_dir, download)
    if not cache:
        return read(name, folder)
    return cached(name, lambda: _read_logged(name, folder), cache_dir(data_dir))


def _read_logged(name: str, folder: Path) -> RawDataset:
    # docs/original-code.md#benchmarks asks to verify the FaceScrub / notMNIST counts on first load
    raw = read(name, folder)
    log.info("%s from %s: %d train, %d test, %d classes", name, folder, len(raw.train_y), len(raw.test_y),
             int(raw.train_y.max()) + 1)
    return raw


def cache_dir(data_dir=None) -> Path:
    return (Path(data_dir) if data_dir else default_data_dir()) / "cache"


def mnist(data_dir=None, download=False) -> RawDataset:
    return load_source("mnist", data_dir, download)


def fashion_mnist(data_dir=None, download=False) -> RawDataset:
    return load_source("fashion_mnist", data_dir, download)


def cifar10(data_dir=None, download=False) -> RawDataset:
    return load_source("cifar10", data_dir, download)


def cifar100(data_dir=None, download=False) -> RawDataset:
    return load_source("cifar100", data_dir, download)


def svhn(data_dir=None, download=False) -> RawDataset:
    return load_source("svhn", data_dir, download)


def traffic_signs(data_dir=None, download=False) -> RawDataset:
    return load_source("traffic_signs", data_dir, download)


def facescrub(data_dir=None, download=False) -> RawDataset:
    return load_source("facescrub", data_dir, download)


def not_mnist(data_dir=None, download=False) -> RawDataset:
    return load_source("not_mnist", data_dir, download)


# ----------------------------------------------------------------------------- conversion


def to_32x32x3(x: torch.Tensor) -> torch.Tensor:
    """The mixture's conversion of uint8 (N, C, H, W): 28x28 zero-padded by 2 px, grey -> 3 channels."""
    if x.shape[-1] == 28:
        x = F.pad(x, (2, 2, 2, 2))
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 (ToTensor then Normalize), per channel; grey stats broadcast."""
    m = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return (x.to(torch.float32) / 255.0 - m) / s
