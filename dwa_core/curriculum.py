"""Curriculum: entropy complexity ζ per image and the θ schedules (docs/original-code.md#curriculum,
#training-loop; paper §3).

ζ_raw = mean over pixels of the squared local Shannon entropy (bits) over a disk of radius 5, computed
on the 8-bit grey image exactly as skimage.filters.rank.entropy (neighbours outside the image are not
counted); ζ = min-max normalised over the set. Vectorised in torch (unfold + scatter_add histograms),
tested equal to scikit-image."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from dwa_core.config import ConfigError

RADIUS = 5
CurriculumKind = Literal["linear", "exp", "log"]
SCHEDULES = get_args(CurriculumKind)


def to_ubyte(x: torch.Tensor) -> torch.Tensor:
    """(N, [C,] H, W) images -> (N, H, W) int64 in 0..255: channel mean, /255 if max > 10, clamp to
    [-1, 1], negatives -> 0, round(255·v) (skimage.img_as_ubyte)."""
    g = x.double().mean(1) if x.dim() == 4 else x.double()
    big = g.flatten(1).amax(1) > 10
    g = torch.where(big[:, None, None], g / 255, g).clamp(0, 1)
    return torch.round(g * 255).long()


def disk_offsets(radius: int = RADIUS) -> torch.Tensor:
    """(K,) flat positions of skimage.morphology.disk(radius) inside its (2r+1)² square."""
    r = torch.arange(-radius, radius + 1)
    inside = (r[:, None] ** 2 + r[None, :] ** 2) <= radius ** 2
    return inside.flatten().nonzero().squeeze(1)


def local_entropy(img: torch.Tensor, radius: int = RADIUS) -> torch.Tensor:
    """(N, H, W) 8-bit values -> (N, H, W) local Shannon entropy in bits over a disk: the disk
    neighbourhoods are unfolded and histogrammed with scatter_add (bin 256 = outside the image)."""
    n, h, w = img.shape
    padded = F.pad(img.double()[:, None], (radius,) * 4, value=256.0)
    patches = F.unfold(padded, 2 * radius + 1)[:, disk_offsets(radius).to(img.device)].long()  # (N, K, H*W)
    idx = patches.transpose(1, 2)  # (N, H*W, K)
    counts = torch.zeros(n, h * w, 257, device=img.device)
    counts.scatter_add_(2, idx, torch.ones((), device=img.device).expand_as(idx))
    # Σ_bins c·log c = Σ over neighbours of log c(bin of the neighbour); H = log n - Σ c log c / n
    valid = idx != 256
    logc = counts.gather(2, idx).double().log2().masked_fill(~valid, 0.0)
    total = valid.sum(2).double()
    return (total.log2() - logc.sum(2) / total).clamp_min(0).view(n, h, w)


def complexity(x: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """(N,) ζ in [0, 1] of a set of images: ζ_raw = mean entropy², min-max over the set."""
    if len(x) == 0:
        return torch.zeros(0, device=x.device)
    raw = torch.cat([local_entropy(to_ubyte(x[s:s + chunk])).pow(2).flatten(1).mean(1)
                     for s in range(0, len(x), chunk)])
    lo, hi = raw.min(), raw.max()
    return ((raw - lo) / torch.clamp(hi - lo, min=1e-4)).float().to(x.device)


@dataclass(frozen=True)
class Curriculum:
    """`type:E[:start[:power]]`; θ_e = min(1, s + (1-s)·f(e/E)) with f linear x, exp x^p (p=2), or
    log ln(1+E·x)/ln(1+E) (the original code's ln x / ln E is -inf at epoch 0 and selects nothing: we shift
    by one epoch so θ_0 = s)."""

    kind: CurriculumKind = "linear"
    epochs: int = 100
    start: float = 0.2
    power: float = 2.0

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ConfigError(f"curriculum type: must be one of {', '.join(SCHEDULES)}, got {self.kind!r}")
        if self.epochs < 1 or not 0 <= self.start <= 1:
            raise ConfigError(f"curriculum: need E >= 1 and 0 <= start <= 1, got {self.epochs}, {self.start}")

    @classmethod
    def coerce(cls, value) -> Curriculum | None:
        """A Curriculum from a Curriculum, its string form ("linear:100:0.2", as the CLI and presets
        write it), a dict of its fields, or None / "" / "none" (no curriculum). Raises ConfigError."""
        if value is None or isinstance(value, cls):
            return value
        if isinstance(value, dict):
            try:
                return cls(**value)
            except TypeError as err:
                raise ConfigError(f"curriculum: {err}; fields: kind, epochs, start, power") from err
        if isinstance(value, str):
            return None if value.strip().lower() in ("", "none") else cls.parse(value)
        raise ConfigError(f"curriculum: expected 'type:E[:start[:power]]', a table or none, got {value!r}")

    def __str__(self) -> str:
        """The string form `parse` reads: kind:epochs:start:power."""
        return f"{self.kind}:{self.epochs}:{self.start:g}:{self.power:g}"

    @classmethod
    def parse(cls, text: str) -> Curriculum:
        """Curriculum from "type:E[:start[:power]]" (start 0.2, power 2 when left out)."""
        parts = str(text).split(":")
        try:
            kind, epochs = parts[0], int(parts[1])
            start = float(parts[2]) if len(parts) > 2 else 0.2
            power = float(parts[3]) if len(parts) > 3 else 2.0
        except (IndexError, ValueError) as err:
            raise ConfigError(f"curriculum: expected 'type:E[:start[:power]]', got {text!r}") from err
        return cls(kind, epochs, start, power)

    def theta(self, epoch: int) -> float:
        x = epoch / self.epochs
        if self.kind == "linear":
            f = x
        elif self.kind == "exp":
            f = x ** self.power
        else:
            f = math.log1p(epoch) / math.log1p(self.epochs)
        return min(1.0, self.start + (1 - self.start) * f)

    def done(self, epoch: int) -> bool:
        return self.theta(epoch) >= 1.0


class ComplexityCache:
    """ζ of each split seen, computed once per tensor (by identity); ζ ≡ 1 when `enabled` is False
    (no curriculum)."""

    def __init__(self, enabled: bool = True):
        self.enabled, self._cache = enabled, {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) ζ of the images x (N, ...)."""
        key = id(x)
        if key not in self._cache or self._cache[key][0] is not x:  # id() may be reused
            z = complexity(x) if self.enabled else torch.ones(len(x), device=x.device)
            self._cache[key] = (x, z)
        return self._cache[key][1]


def select(zeta: torch.Tensor, theta: float) -> torch.Tensor:
    """Rows with ζ ≤ θ (all rows once θ >= 1)."""
    return torch.arange(len(zeta), device=zeta.device) if theta >= 1 else (zeta <= theta).nonzero().squeeze(1)
