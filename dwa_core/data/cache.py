"""Cache of decoded uint8 datasets: <cache_dir>/<name>.pt plus its sha256 in <name>.pt.sha256.

A cache whose bytes do not match the stored checksum (truncated, corrupted, half-written) is
logged as a warning and rebuilt; a valid one is loaded without decoding any image again.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from dwa_core.data.types import RawDataset

log = logging.getLogger(__name__)


def _paths(name: str, cache_dir) -> tuple[Path, Path]:
    base = Path(cache_dir) / f"{name}.pt"
    return base, base.with_name(base.name + ".sha256")


def save(name: str, raw, cache_dir) -> Path:
    """Write `raw` (a RawDataset) and its checksum; the data file is replaced atomically."""
    path, digest_path = _paths(name, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(asdict(raw), buffer)
    data = buffer.getvalue()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # parallel runs (ray tune) may write at once
    tmp.write_bytes(data)
    os.replace(tmp, path)
    digest_path.write_text(hashlib.sha256(data).hexdigest())
    return path


def load(name: str, cache_dir):
    """The cached RawDataset, or None when missing or invalid (with a warning when invalid)."""
    path, digest_path = _paths(name, cache_dir)
    if not path.is_file():
        return None
    data = path.read_bytes()
    expected = digest_path.read_text().strip() if digest_path.is_file() else None
    if expected != hashlib.sha256(data).hexdigest():
        log.warning("cache %s fails its sha256 check (corrupt or truncated); rebuilding", path)
        return None
    try:
        return RawDataset(**torch.load(io.BytesIO(data), weights_only=True))
    except Exception as err:  # a matching checksum over an unreadable file: still rebuild
        log.warning("cache %s unreadable (%s); rebuilding", path, err)
        return None


def cached(name: str, build: Callable, cache_dir):
    """Load `name` from the cache, else `build()` it and cache it."""
    raw = load(name, cache_dir)
    if raw is None:
        raw = build()
        try:
            save(name, raw, cache_dir)
        except OSError as err:  # a read-only data dir: the run goes on, only slower next time
            log.warning("cannot cache %s in %s (%s); continuing without a cache", name, cache_dir,
                        err.strerror or err)
    return raw
