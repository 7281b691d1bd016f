"""Which parameters are the head and which the backbone, and freezing the backbone.

The head is the model's last ``nn.Linear`` (in module order): the classifier of every
model built here (``seed_cnn``'s last layer, ``resnet_small``'s ``head``, timm's
``classifier``, torchvision's ``fc`` / ``classifier[-1]`` / ``heads.head``). The stem is
the first ``nn.Conv2d``: the layer that meets the image's channels. Everything but the
head is the backbone.
"""

from __future__ import annotations

from torch import nn


def head_name(model: nn.Module) -> str:
    """The module name of the last ``nn.Linear``."""
    names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier to replace")
    return names[-1]


def stem_name(model: nn.Module) -> str:
    """The module name of the first ``nn.Conv2d``."""
    return next(name for name, m in model.named_modules() if isinstance(m, nn.Conv2d))


def head_parameter_names(model: nn.Module) -> set[str]:
    prefix = head_name(model) + "."
    return {name for name, _ in model.named_parameters() if name.startswith(prefix)}


def head_state_keys(model: nn.Module) -> set[str]:
    prefix = head_name(model) + "."
    return {key for key in model.state_dict() if key.startswith(prefix)}


def freeze_backbone(model: nn.Module, frozen: bool) -> None:
    """Backbone parameters stop (or resume) taking gradients; the head always trains.

    A parameter without a gradient is skipped by every torch optimizer, so neither its
    value nor its momentum or Adam moments move while frozen.
    """
    head = head_parameter_names(model)
    for name, p in model.named_parameters():
        p.requires_grad_(name in head or not frozen)


def backbone_norms_eval(model: nn.Module) -> None:
    """Batch norm of the backbone to eval mode (call after ``model.train()``): frozen
    layers keep their running statistics too, so the backbone is exactly as loaded."""
    head = head_name(model)
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not (name == head or name.startswith(head + ".")):
            m.eval()
