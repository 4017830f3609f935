"""Pure maths of HAT (Serra et al. 2018; docs/original-code.md#hat). Masks are dicts or lists of tensors."""

from __future__ import annotations

import torch


def gate(e: torch.Tensor, s: float) -> torch.Tensor:
    """Unit mask a = sigmoid(s * e) (HAT Eq. 1)."""
    return torch.sigmoid(s * e)


def anneal_s(progress: float, s_max: float) -> float:
    """s = 1/s_max + (s_max - 1/s_max) * progress, progress in [0, 1) within an epoch (HAT Eq. 3)."""
    return 1.0 / s_max + (s_max - 1.0 / s_max) * progress


def mask_regularizer(masks, previous=None) -> torch.Tensor:
    """R = sum a_t (1 - a_<t) / sum (1 - a_<t) over all units of all layers (HAT Eq. 5);
    without previous masks R = sum a_t / number of units.

    When earlier tasks use every unit (a_<t = 1 everywhere: the network is full), the numerator
    and the denominator are both 0 and R is defined as 0, with a zero gradient: no free unit is
    left to penalise (the original code divided 0 by 0 and the run stopped on a NaN loss)."""
    masks = list(masks)
    if previous is None:
        return sum(m.sum() for m in masks) / sum(m.numel() for m in masks)
    previous = list(previous)
    num = sum((m * (1 - p)).sum() for m, p in zip(masks, previous))
    free = sum((1 - p).sum() for p in previous)
    # free == 0 exactly only when num == 0 too: the clamp turns 0/0 into 0 and changes nothing else
    return num / free.clamp_min(torch.finfo(free.dtype).tiny)


def weight_view(post: torch.Tensor, pre: torch.Tensor | None, ndim: int) -> torch.Tensor:
    """min(a_post_i, a_pre_j) shaped for a weight of `ndim` dims (out, in, [k, k]); the first layer
    has no pre mask (post only). Biases use `post` itself."""
    extra = (1,) * (ndim - 1)
    post = post.reshape(-1, *extra)
    if pre is None:
        return post
    pre = pre.reshape(1, -1, *((1,) * (ndim - 2)))
    return torch.minimum(post, pre)


def channels_to_units(channel_mask: torch.Tensor, spatial: int) -> torch.Tensor:
    """A conv channel mask as the mask of the flattened (C, H, W) features: each channel repeated over
    its `spatial` = H*W positions, channel-major (the order of torch.flatten)."""
    return channel_mask.repeat_interleave(spatial)


def gradient_multiplier(view: torch.Tensor) -> torch.Tensor:
    """Gradients of weights used by earlier tasks are scaled by 1 - min(a_post, a_pre) (HAT Eq. 2)."""
    return 1 - view


def compensate_embedding_grad(grad: torch.Tensor, e: torch.Tensor, s: float, s_max: float,
                              thres_cosh: float = 50.0) -> torch.Tensor:
    """g * (s_max/s) * (cosh(clamp(s e)) + 1) / (cosh(e) + 1) (HAT Eq. 4, as in the original code)."""
    num = torch.cosh(torch.clamp(s * e, -thres_cosh, thres_cosh)) + 1
    return grad * (s_max / s) * num / (torch.cosh(e) + 1)


def cumulative_update(previous: dict | None, masks: dict) -> dict:
    """a^{<=t} = max(a^{<t}, a^t), elementwise per layer."""
    if previous is None:
        return {k: m.detach().clone() for k, m in masks.items()}
    return {k: torch.maximum(previous[k], m.detach()) for k, m in masks.items()}
