"""torchvision's pretrained weights by name (``train.pretrained``), resolved without a download.

Its own module so that params validation (``pipeline.config``) can check a name up front
without importing the trainer that uses it.
"""

from __future__ import annotations


def torchvision_weights(name: str):
    """``resnet18.IMAGENET1K_V1`` (or ``resnet18.DEFAULT``) -> torchvision's weights enum member.
    ValueError (a config error) for a name torchvision does not know."""
    import torchvision

    arch, _, tag = name.partition(".")
    if not arch or not tag:
        raise ValueError(f"train.pretrained {name!r}: write <architecture>.<weights>, e.g. resnet18.IMAGENET1K_V1")
    try:
        enum = torchvision.models.get_model_weights(arch)
    except ValueError:
        raise ValueError(f"train.pretrained {name!r}: torchvision has no architecture {arch!r} "
                         "(torchvision.models.list_models() lists them)") from None
    try:
        return enum[tag]
    except KeyError:
        known = ", ".join(["DEFAULT", *enum.__members__])
        raise ValueError(f"train.pretrained {name!r}: {arch} has no weights {tag!r}; known: {known}") from None
