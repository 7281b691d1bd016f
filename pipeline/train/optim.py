"""Optimizers and learning-rate schedules from ``train.*`` params.

Schedules are stepped once per optimizer step and are pure functions of the step
number, so a resumed run (which restores the step count) follows the same curve.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pipeline.config import TrainParams


def parameter_groups(model: nn.Module, weight_decay: float, lr: float,
                     backbone_lr: float | None = None, head: set[str] | None = None) -> list[dict]:
    """Weight decay on conv/linear weights only: decaying batch-norm scales and
    biases only hurts (the usual practice since Goyal et al. 2017).

    With ``backbone_lr`` (a factor; a model that starts from trained weights) the head
    keeps ``lr`` and the backbone trains at ``lr * backbone_lr``, so fine-tuning adapts the
    features without washing them out. The head's groups come first: ``param_groups[0]``
    carries ``train.lr``'s schedule, the one logged. ``head``: the names of the parameters
    that are new (default: the last ``nn.Linear``'s, a classifier's head).
    """
    from pipeline.train.backbone import head_parameter_names

    if backbone_lr is None:
        head = set()
    elif head is None:
        head = head_parameter_names(model)
    parts: dict[tuple[bool, bool], list] = {(h, d): [] for h in (True, False) for d in (True, False)}
    for name, p in model.named_parameters():
        if p.requires_grad:
            parts[(backbone_lr is None or name in head, p.ndim > 1)].append(p)
    groups = []
    for (in_head, decay), ps in parts.items():
        if ps or (in_head and backbone_lr is None):  # from scratch: the two groups as always
            groups.append({"params": ps, "weight_decay": weight_decay if decay else 0.0,
                           "lr": lr if in_head else lr * backbone_lr})
    return groups


def make_optimizer(params: TrainParams, model: nn.Module, backbone_lr: float | None = None,
                   head: set[str] | None = None) -> torch.optim.Optimizer:
    groups = parameter_groups(model, params.weight_decay, params.lr, backbone_lr, head)
    if params.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=params.lr, momentum=params.momentum,
                               nesterov=params.nesterov and params.momentum > 0)
    if params.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=params.lr)
    return torch.optim.Adam(groups, lr=params.lr)


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """lr factor: linear from 1/warmup to 1 over ``warmup`` steps, then cosine to 0."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(total - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))


def cycled_momentum(params: TrainParams) -> dict:
    """OneCycleLR's momentum cycle (Smith 2018: momentum falls while the lr rises), centred
    on ``train.momentum`` for SGD so the knob counts: 0.95 -> 0.85 -> 0.95 at 0.9, none at 0.
    Adam's beta1 keeps torch's 0.95 -> 0.85 cycle."""
    if params.optimizer != "sgd":
        return {}
    m = params.momentum
    if m == 0:
        return {"cycle_momentum": False}
    # Rounded so 0.9 gives torch's defaults exactly (0.9 + 0.05 is 0.9500000000000001).
    return {"base_momentum": max(round(m - 0.05, 12), 0.0), "max_momentum": min(round(m + 0.05, 12), 0.999)}


def make_schedule(params: TrainParams, opt: torch.optim.Optimizer, steps_per_epoch: int):
    total = params.epochs * steps_per_epoch
    if params.schedule == "onecycle":
        if total < 3:  # too short to warm up and anneal: a smoke run at the peak rate
            return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
        # OneCycleLR divides by each phase's length in steps (pct * total - 1, then the
        # rest): at 4 steps a quarter leaves the warmup phase empty (ZeroDivisionError).
        # Each group's own peak: train.lr for the head, times train.backbone_lr for a backbone.
        max_lr = [g["lr"] for g in opt.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=total,
                                                   pct_start=max(0.25, 2.0 / total), **cycled_momentum(params))
    if params.schedule == "cosine":
        warmup = round(params.warmup_epochs * steps_per_epoch)
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total, warmup))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
