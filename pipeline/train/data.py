"""Reading a dataset version's packed splits as tensors (no per-sample decode)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.errors import InputError


@dataclass(frozen=True)
class SplitTensors:
    images: torch.Tensor  # uint8 (N, C, H, W), channels_last strides
    labels: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class VersionInfo:
    classes: tuple[str, ...]
    shape: tuple[int, int, int]  # (H, W, C)
    mean: tuple[float, ...]
    std: tuple[float, ...]


def read_card(version: Path) -> VersionInfo:
    card_path = Path(version) / "card.json"
    if not card_path.is_file():
        raise InputError(f"{card_path}: not a dataset version (run the augment stage first)")
    card = json.loads(card_path.read_text())
    train = card["splits"]["train"]
    return VersionInfo(
        classes=tuple(card["classes"]), shape=tuple(card["image_shape"]),
        mean=tuple(train["pixel_mean"]), std=tuple(max(s, 1e-6) for s in train["pixel_std"]),
    )


def load_split(version: Path, split: str) -> SplitTensors:
    path = Path(version) / f"{split}_images.npy"
    if not path.is_file():
        raise InputError(f"{path}: split {split!r} missing from the dataset version")
    # Read into memory (the packed uint8 splits are small next to RAM: 60k MNIST
    # digits are 47 MB); a memory-mapped loader for larger versions is future work.
    images = np.load(path)
    labels = np.load(Path(version) / f"{split}_labels.npy")
    # (N, H, W, C) -> (N, C, H, W) view: channels_last memory, which conv kernels prefer.
    t = torch.from_numpy(images).permute(0, 3, 1, 2)
    return SplitTensors(images=t, labels=torch.from_numpy(labels))


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float, standardised by the training split's statistics."""
    x = images.to(torch.float32).div_(255.0)
    return x.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1)).contiguous(memory_format=torch.channels_last)
