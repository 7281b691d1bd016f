"""MixUp and CutMix on a training batch, with soft labels, keyed per sample.

The augmentation engine (``pipeline.augment``) has no label-mixing ops yet, so the
trainer mixes here. Draws come from the same counter-based per-sample keys as the
online ops (``pipeline.augment.rng``), so a sample's mixing weight and box depend
only on (seed, sample id, epoch). Sample ``i`` is mixed with the sample at the
mirrored position ``B-1-i`` of its batch (timm's "flip" pairing), which is fixed
by the epoch's deterministic order.
"""

from __future__ import annotations

import torch

from pipeline.augment import rng
from pipeline.seeding import key64

_TRIES = 16  # Johnk's sampler accepts with probability >= 0.5 per try for alpha <= 1


def _stream(name: str) -> int:
    return key64("train-mix", name) & 0xFFFFFFF


def beta_symmetric(keys: torch.Tensor, stream: int, alpha: float) -> torch.Tensor:
    """(B,) draws from Beta(alpha, alpha) by Johnk's method, vectorised over keys.

    Each sample makes ``_TRIES`` candidate pairs from its own counters and keeps the
    first accepted; the chance that none is accepted is below 2^-16, and then 0.5
    is used. Pure function of the keys: no generator state.
    """
    u = rng.uniform(keys, stream, 2 * _TRIES).clamp_min(1e-12)
    x = u[:, :_TRIES] ** (1.0 / alpha)
    y = u[:, _TRIES:] ** (1.0 / alpha)
    s = x + y
    ok = (s <= 1.0) & (s > 0)
    first = torch.where(ok.any(1), ok.to(torch.int8).argmax(1), 0)
    lam = (x / s.clamp_min(1e-12)).gather(1, first[:, None])[:, 0]
    return torch.where(ok.any(1), lam, 0.5)


def one_hot(labels: torch.Tensor, classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """(B, K) soft targets: one-hot with label smoothing spread over all classes."""
    t = torch.full((labels.shape[0], classes), smoothing / classes, device=labels.device)
    return t.scatter_(1, labels[:, None], 1.0 - smoothing + smoothing / classes)


def mix_batch(images: torch.Tensor, targets: torch.Tensor, keys: torch.Tensor, mixup_alpha: float,
              cutmix_alpha: float, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix float (B, C, H, W) images and (B, K) soft targets per sample.

    With both alphas set, each mixed sample picks mixup or cutmix with equal odds.
    """
    b, _, h, w = images.shape
    if b < 2 or (mixup_alpha <= 0 and cutmix_alpha <= 0) or p <= 0:
        return images, targets
    partner = torch.arange(b - 1, -1, -1, device=images.device)
    applied = rng.uniform(keys, _stream("applied"), 1)[:, 0] < p
    use_cut = torch.zeros(b, dtype=torch.bool, device=images.device)
    if cutmix_alpha > 0:
        use_cut = (rng.uniform(keys, _stream("which"), 1)[:, 0] < 0.5) if mixup_alpha > 0 else ~use_cut
    lam = torch.ones(b, device=images.device)
    if mixup_alpha > 0:
        lam = torch.where(~use_cut, beta_symmetric(keys, _stream("mixup"), mixup_alpha), lam)
    # CutMix: a box of area (1 - lam) at a uniform centre, clipped to the image;
    # lam is then the share of pixels actually kept.
    mask = torch.zeros(b, 1, h, w, dtype=torch.bool, device=images.device)
    if cutmix_alpha > 0:
        lam_c = beta_symmetric(keys, _stream("cutmix"), cutmix_alpha)
        cy, cx = (rng.uniform(keys, _stream("centre"), 2) * torch.tensor([h, w], device=images.device)).unbind(1)
        half_h = h * (1 - lam_c).sqrt() / 2
        half_w = w * (1 - lam_c).sqrt() / 2
        y0, y1 = (cy - half_h).round().clamp(0, h), (cy + half_h).round().clamp(0, h)
        x0, x1 = (cx - half_w).round().clamp(0, w), (cx + half_w).round().clamp(0, w)
        rows = torch.arange(h, device=images.device)[None, :, None]
        cols = torch.arange(w, device=images.device)[None, None, :]
        box = ((rows >= y0[:, None, None]) & (rows < y1[:, None, None])
               & (cols >= x0[:, None, None]) & (cols < x1[:, None, None]))
        box = box & (use_cut & applied)[:, None, None]
        mask = box[:, None]
        kept = 1.0 - box.flatten(1).float().mean(1)
        lam = torch.where(use_cut, kept, lam)
    lam = torch.where(applied, lam, 1.0)
    other = images[partner]
    blended = lam[:, None, None, None] * images + (1 - lam[:, None, None, None]) * other
    out = torch.where(mask, other, torch.where(use_cut[:, None, None, None], images, blended))
    mixed_targets = lam[:, None] * targets + (1 - lam[:, None]) * targets[partner]
    return out, mixed_targets
