"""Curriculum: entropy complexity ζ per image and the θ schedules (seed_spec §5.6, §3; paper §3).

ζ_raw = mean over pixels of the squared local Shannon entropy (bits) over a disk of radius 5, computed
on the 8-bit grey image exactly as skimage.filters.rank.entropy (neighbours outside the image are not
counted); ζ = min-max normalised over the set. Vectorised in torch: the disk neighbourhoods are
unfolded, sorted, and Σ_c c·log c is accumulated over runs of equal values."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dwa_core.config import ConfigError

RADIUS = 5
SCHEDULES = ("linear", "exp", "log")


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
    """(N, H, W) 8-bit values -> (N, H, W) local Shannon entropy in bits over a disk."""
    n, h, w = img.shape
    sentinel = 256  # padding outside the image, excluded from the histogram
    padded = F.pad(img.double()[:, None], (radius,) * 4, value=sentinel)
    patches = F.unfold(padded, 2 * radius + 1)[:, disk_offsets(radius)]  # (N, K, H*W)
    s, _ = patches.sort(dim=1)
    k_idx = torch.arange(s.shape[1], dtype=torch.float64).view(1, -1, 1).expand_as(s)
    start = torch.ones_like(s, dtype=torch.bool)
    start[:, 1:] = s[:, 1:] != s[:, :-1]
    run_start = torch.where(start, k_idx, torch.zeros_like(k_idx)).cummax(dim=1).values
    k = k_idx - run_start + 1  # position of each element inside its run of equal values
    valid = s != sentinel
    g = k * torch.log2(k) - (k - 1) * torch.log2((k - 1).clamp_min(1))  # Σ over a run = c·log2 c
    clogc = torch.where(valid, g, torch.zeros_like(g)).sum(1)
    count = valid.sum(1).double()
    return (torch.log2(count) - clogc / count).clamp_min(0).view(n, h, w)


def complexity(x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """(N,) ζ in [0, 1] of a set of images: ζ_raw = mean entropy², min-max over the set."""
    raw = torch.cat([local_entropy(to_ubyte(x[s:s + chunk].cpu())).pow(2).flatten(1).mean(1)
                     for s in range(0, len(x), chunk)]) if len(x) else torch.zeros(0, dtype=torch.float64)
    if len(raw) == 0:
        return raw.float().to(x.device)
    lo, hi = raw.min(), raw.max()
    return ((raw - lo) / torch.clamp(hi - lo, min=1e-4)).float().to(x.device)


@dataclass(frozen=True)
class Curriculum:
    """`type:E[:start[:power]]`; θ_e = min(1, s + (1-s)·f(e/E)) with f linear x, exp x^p (p=2), or
    log ln(1+E·x)/ln(1+E) (the seed's ln x / ln E is -inf at epoch 0 and selects nothing: we shift
    by one epoch so θ_0 = s)."""

    kind: str = "linear"
    epochs: int = 100
    start: float = 0.2
    power: float = 2.0

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ConfigError(f"curriculum type: must be one of {', '.join(SCHEDULES)}, got {self.kind!r}")
        if self.epochs < 1 or not 0 <= self.start <= 1:
            raise ConfigError(f"curriculum: need E >= 1 and 0 <= start <= 1, got {self.epochs}, {self.start}")

    @classmethod
    def parse(cls, text: str) -> Curriculum:
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


def select(zeta: torch.Tensor, theta: float) -> torch.Tensor:
    """Rows with ζ ≤ θ (all rows once θ >= 1)."""
    return torch.arange(len(zeta), device=zeta.device) if theta >= 1 else (zeta <= theta).nonzero().squeeze(1)
