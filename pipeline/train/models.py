"""Models, built from the dataset version's shape and classes.

``seed_cnn`` is the CNN from the tutorial this project grew from: three 5x5 conv
layers (32, 32, 64 channels, padding 2) each followed by ReLU and 2x2 max-pooling,
then Linear(., 64) + ReLU and Linear(64, classes).

``resnet_small`` is a ResNet-9-style network (the DAWNBench CIFAR-10 design):
a 3x3 stem, three stages of conv + 2x2 max-pool + batch norm, residual blocks
after the first and last stage, then global pooling, so any input size of at
least 8x8 works. ``width`` scales every stage (64 gives the CIFAR-10 ResNet-9).

``efficientnet_lite0`` (``_lite1``, ``_lite2``) is timm's ``tf_efficientnet_lite<n>``: EfficientNet-Lite as
TensorFlow defined it ("same" padding, batch-norm epsilon 1e-3), the architecture the
ImageNet weights of ``pipeline.train.pretrained`` were trained in. ``torchvision:<name>``
is any torchvision classification architecture (``resnet18``, ``mobilenet_v3_small``...).
Both are built here without weights (a checkpoint or ``pretrained`` fills them in), for
the version's channels (a new stem when it is not 3) and classes (a new head). Dropout
and stochastic depth are off: they draw from the global RNG, and a run is a function
of its params and data.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pipeline.config import TASK_MODELS


def seed_cnn(in_channels: int, height: int, width: int, classes: int) -> nn.Module:
    if min(height, width) < 8:
        raise ValueError(f"seed_cnn needs images of at least 8x8 (got {height}x{width})")
    fh, fw = height // 8, width // 8  # three 2x2 pools, floor division each time
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * fh * fw, 64), nn.ReLU(),
        nn.Linear(64, classes),
    )


def conv_bn(cin: int, cout: int, pool: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=False)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    layers += [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class Residual(nn.Module):
    """x + f(x) with f = two conv-BN-ReLU layers."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNetSmall(nn.Module):
    def __init__(self, in_channels: int, classes: int, width: int):
        super().__init__()
        w1, w2, w3 = 2 * width, 4 * width, 8 * width
        self.features = nn.Sequential(
            conv_bn(in_channels, width),
            conv_bn(width, w1, pool=True), Residual(w1),
            conv_bn(w1, w2, pool=True),
            conv_bn(w2, w3, pool=True), Residual(w3),
            # Global pooling is what lets the network take any input size.
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(w3, classes, bias=False)
        # The DAWNBench trick: a small fixed scale on the logits steadies early training.
        self.scale = 0.125

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)) * self.scale


def resnet_small(in_channels: int, height: int, width: int, classes: int, base: int = 16) -> nn.Module:
    if min(height, width) < 8:
        raise ValueError(f"resnet_small needs images of at least 8x8 (got {height}x{width})")
    return ResNetSmall(in_channels, classes, base)


def efficientnet_lite(variant: int):
    def build(in_channels: int, height: int, width: int, classes: int) -> nn.Module:
        import timm

        return timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False, num_classes=classes,
                                 in_chans=in_channels, drop_rate=0.0, drop_path_rate=0.0)
    return build


TORCHVISION = "torchvision:"  # prefix of a torchvision architecture's name, e.g. torchvision:resnet18


def torchvision_model(arch: str, in_channels: int, classes: int) -> nn.Module:
    import torchvision
    from torchvision.ops import StochasticDepth

    from pipeline.train.backbone import stem_name

    model = torchvision.models.get_model(arch, weights=None, num_classes=classes)
    stem = stem_name(model)
    conv = model.get_submodule(stem)
    if conv.in_channels != in_channels:  # same layer, the version's channels
        parent, _, attr = stem.rpartition(".")
        setattr(model.get_submodule(parent), attr, nn.Conv2d(
            in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
            conv.groups, conv.bias is not None, conv.padding_mode))
    for m in model.modules():
        if isinstance(m, (nn.Dropout, nn.Dropout2d, StochasticDepth)):
            m.p = 0.0
    return model


MODELS = {"seed_cnn": seed_cnn, "resnet_small": resnet_small,
          **{f"efficientnet_lite{v}": efficientnet_lite(v) for v in (0, 1, 2)}}
SCALABLE = {"resnet_small"}  # models that take a width (``train.width``)
assert (*MODELS, "torchvision") == TASK_MODELS["classify"], "one list of classification models"


def known_model(name: object) -> bool:
    return isinstance(name, str) and (name in MODELS or name.startswith(TORCHVISION))


def init_parameters(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default Conv/Linear initialisation, drawn from ``generator``.

    Using an explicit generator (not the global RNG) makes the initial weights a
    function of the seed alone. Batch norm starts at weight 1, bias 0 (no draws).
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                fan_in = m.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_model(name: str, in_channels: int, height: int, width: int, classes: int,
                seed: int, base: int | None = None) -> nn.Module:
    """Model ``name`` for (C, H, W) inputs and ``classes`` outputs, initialised from ``seed``.

    ``base`` is the width of ``resnet_small`` (ignored by the others); None = the model's default.
    """
    kwargs = {"base": base} if base is not None and name in SCALABLE else {}
    # timm and torchvision initialise from the global RNG: fork it, so building a model
    # leaves the process's random state as it was (the init below is the seed's).
    with torch.random.fork_rng(devices=[]):
        if name.startswith(TORCHVISION):
            model = torchvision_model(name.removeprefix(TORCHVISION), in_channels, classes)
        else:
            model = MODELS[name](in_channels, height, width, classes, **kwargs)
    g = torch.Generator().manual_seed(seed)
    init_parameters(model, g)
    return model
