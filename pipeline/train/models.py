"""Models, built from the dataset version's shape and classes.

``seed_cnn`` is the CNN from the tutorial this project grew from: three 5x5 conv
layers (32, 32, 64 channels, padding 2) each followed by ReLU and 2x2 max-pooling,
then Linear(., 64) + ReLU and Linear(64, classes).
"""

from __future__ import annotations

import math

import torch
from torch import nn


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


MODELS = {"seed_cnn": seed_cnn}


def init_parameters(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default Conv/Linear initialisation, drawn from ``generator``.

    Using an explicit generator (not the global RNG) makes the initial weights a
    function of the seed alone.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                fan_in = m.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)


def build_model(name: str, in_channels: int, height: int, width: int, classes: int,
                seed: int) -> nn.Module:
    model = MODELS[name](in_channels, height, width, classes)
    g = torch.Generator().manual_seed(seed)
    init_parameters(model, g)
    return model
