"""Soft-label targets and online MixUp/CutMix for training, on the engine's ops.

Targets: a row's soft label is ``w * onehot(label) + (1 - w) * onehot(mix_label)``
(the dataset version's offline mix arrays; w = 1 for rows not mixed), with label
smoothing spread over all classes.

Online mixing maps ``train.mixup_alpha / cutmix_alpha / mix_p`` onto the engine's
``mixup`` and ``cutmix`` ops (``pipeline.augment.mixing``). Draws come from the
per-sample keys of (train seed, row id, epoch). Each sample's partner is chosen by
``Pipeline.partner_indices`` from its key among the rows of its batch (in DDP: of
this rank's shard of the global batch) and passed in as data, so a sample's result
depends only on its key and on which rows share its batch, which the epoch's keyed
order fixes. With both alphas set each sample picks one op with equal odds (a keyed
draw here: the engine has no one-of choice, and two mixing ops in a row would mix a
sample twice while its label records only the last partner).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from pipeline.augment import rng
from pipeline.augment.pipeline import Pipeline
from pipeline.augment.registry import build_pipeline
from pipeline.augment.targets import Targets
from pipeline.core.seeding import key64

_WHICH = key64("train-mix", "which") & 0xFFFFFFF  # the mixup-or-cutmix draw


def one_hot(labels: torch.Tensor, classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """(B, K) soft targets: one-hot with label smoothing spread over all classes."""
    t = torch.full((labels.shape[0], classes), smoothing / classes, device=labels.device)
    return t.scatter_(1, labels[:, None], 1.0 - smoothing + smoothing / classes)


def soft_targets(labels: torch.Tensor, classes: int, smoothing: float = 0.0,
                 mix_labels: torch.Tensor | None = None, mix_weights: torch.Tensor | None = None) -> torch.Tensor:
    """(B, K) targets of rows that may be offline mixup/cutmix blends.

    ``mix_weights`` is the weight of ``labels``; rows with weight 1 get exactly the
    smoothed one-hot of ``labels`` (so versions without mixing train as before).
    """
    t = one_hot(labels, classes, smoothing)
    if mix_labels is None:
        return t
    w = mix_weights.to(t.dtype)[:, None]
    return torch.where(w == 1.0, t, w * t + (1 - w) * one_hot(mix_labels, classes, smoothing))


def mixers(mixup_alpha: float, cutmix_alpha: float, p: float) -> tuple[Pipeline | None, Pipeline | None]:
    """The engine pipelines for ``train.mixup_alpha / cutmix_alpha / mix_p`` (None: off)."""
    if p <= 0:
        return None, None
    return (build_pipeline([{"name": "mixup", "alpha": mixup_alpha, "p": p}]) if mixup_alpha > 0 else None,
            build_pipeline([{"name": "cutmix", "alpha": cutmix_alpha, "p": p}]) if cutmix_alpha > 0 else None)


def mix_batch(images: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor, keys: torch.Tensor,
              pipes: tuple[Pipeline | None, Pipeline | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix float (B, C, H, W) images and their (B, K) soft targets per sample.

    The engine returns each mixed sample's weight (``Targets.mix_weight``: the share
    of its own image, for cutmix the exact kept area); the soft target is then
    ``lam * own + (1 - lam) * partner``, so already-mixed (offline) targets stay exact.
    """
    mixup, cutmix = pipes
    b, _, h, w = images.shape
    if b < 2 or (mixup is None and cutmix is None):
        return images, targets
    if mixup is not None and cutmix is not None:
        use_cut = rng.uniform(keys, _WHICH, 1)[:, 0] < 0.5
    else:
        use_cut = torch.full((b,), cutmix is not None, dtype=torch.bool, device=images.device)
    out_x, out_t = images.clone(), targets.clone()
    for pipe, chosen in ((mixup, ~use_cut), (cutmix, use_cut)):
        idx = torch.nonzero(chosen)[:, 0]
        if pipe is None or not len(idx):
            continue
        drawn = pipe.sample(keys[idx], h, w)
        partner = pipe.partner_indices(drawn, b)[:, 0].to(images.device)  # into the whole batch
        own_t = replace(Targets.empty(len(idx), images.device), classes=labels[idx])
        partner_t = replace(Targets.empty(len(idx), images.device), classes=labels[partner])
        x, t = pipe.transform(images[idx], own_t, drawn, partners=[(images[partner], partner_t)])
        lam = t.mix_weight.to(targets.dtype)[:, None]
        out_x[idx] = x
        out_t[idx] = lam * targets[idx] + (1 - lam) * targets[partner]
    return out_x, out_t
