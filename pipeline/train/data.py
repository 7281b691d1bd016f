"""Reading a dataset version's packed splits as tensors (no per-sample decode)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.errors import InputError
from pipeline.seeding import key64, sample_key


@dataclass(frozen=True)
class SplitTensors:
    images: torch.Tensor  # uint8 (N, C, H, W), channels_last strides
    labels: torch.Tensor  # int64 (N,)
    # Offline mixup/cutmix (versions that have the arrays): the partner's class and
    # the weight of ``labels`` (1.0, mix_label == label: not mixed). None: hard labels.
    mix_labels: torch.Tensor | None = None  # int64 (N,)
    mix_weights: torch.Tensor | None = None  # float32 (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class VersionInfo:
    classes: tuple[str, ...]
    shape: tuple[int, int, int]  # (H, W, C)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    digest: str = ""  # blake2b of card.json: identifies the version a run trained on
    resize: tuple[str, int] = ("stretch", 114)  # augment.resize and pad_value: predict resizes alike


def read_card(version: Path) -> VersionInfo:
    from pipeline.version.dataset import AUGMENT_AGAIN, CARD, read_card as read_version_card

    card_path = Path(version) / CARD
    if not os.path.lexists(card_path):
        raise InputError(f"{card_path}: not a dataset version (run the augment stage first)")
    card = read_version_card(version)
    try:
        train = card["splits"]["train"]
        return VersionInfo(
            classes=tuple(card["classes"]), shape=tuple(card["image_shape"]),
            mean=tuple(train["pixel_mean"]), std=tuple(max(s, 1e-6) for s in train["pixel_std"]),
            digest=hashlib.blake2b(card_path.read_bytes(), digest_size=8).hexdigest(),
            resize=(card["params"].get("resize", "stretch"), card["params"].get("pad_value", 114)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(f"{card_path}: not a complete card ({type(err).__name__}: {err}); {AUGMENT_AGAIN}") from None


def load_split(version: Path, split: str) -> SplitTensors:
    path = Path(version) / f"{split}_images.npy"
    if not path.is_file():
        if (Path(version) / "images" / split).is_dir():  # large images are stored as files
            raise InputError(f"{version}: the {split} images are stored as files, not packed; training "
                             "reads packed versions: set augment.image_size to a smaller [height, width]")
        raise InputError(f"{path}: split {split!r} missing from the dataset version")
    # Read into memory (the packed uint8 splits are small next to RAM: 60k MNIST
    # digits are 47 MB); a memory-mapped loader for larger versions is future work.
    images = np.load(path)
    labels = np.load(Path(version) / f"{split}_labels.npy")
    if labels.size and labels.min() < 0:
        raise InputError(f"{version}: {int((labels < 0).sum())} {split} images have no class label "
                         "(detection data); train and evaluate need one label per image")
    mix_labels = mix_weights = None
    if (Path(version) / f"{split}_mix_labels.npy").is_file():  # versions before offline mixing lack them
        mix_labels = torch.from_numpy(np.load(Path(version) / f"{split}_mix_labels.npy"))
        mix_weights = torch.from_numpy(np.load(Path(version) / f"{split}_mix_weights.npy"))
        if len(mix_labels) != len(labels) or len(mix_weights) != len(labels):
            raise InputError(f"{version}: {split}_mix_labels.npy / {split}_mix_weights.npy do not have one "
                             f"entry per image ({len(labels)}); re-run the augment stage")
    # (N, H, W, C) -> (N, C, H, W) view: channels_last memory, which conv kernels prefer.
    t = torch.from_numpy(images).permute(0, 3, 1, 2)
    return SplitTensors(images=t, labels=torch.from_numpy(labels), mix_labels=mix_labels, mix_weights=mix_weights)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float, standardised by the training split's statistics."""
    x = images.to(torch.float32).div_(255.0)
    return x.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1)).contiguous(memory_format=torch.channels_last)


def split_ids(version: Path, split: str) -> list[str]:
    """The row ids (``<source id>#<copy>``) of ``split``, in array order."""
    from pipeline.record import read_jsonl
    from pipeline.version.dataset import AUGMENT_AGAIN

    rows = read_jsonl(Path(version) / "manifest.jsonl", lambda d: (d["split"], d["id"]), AUGMENT_AGAIN)
    return [i for s, i in rows if s == split]


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The epoch's shuffle: a permutation from a generator keyed by (seed, epoch)."""
    g = torch.Generator().manual_seed(key64("shuffle", seed, epoch) & 0x7FFFFFFFFFFFFFFF)
    return torch.randperm(n, generator=g)


def shard(global_batch: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's part of a global batch: every ``world``-th index from ``rank``.

    Every rank sees the same epoch order, so the union of the shards is exactly the
    single-process batch (the DistributedSampler idea, without padding samples).
    """
    return global_batch[rank::world]


def online_keys(ids: list[str], idx: torch.Tensor, seed: int, epoch: int, device) -> torch.Tensor:
    """Per-sample keys for online augmentation: (train seed, row id, epoch)."""
    from pipeline.augment.rng import keys_tensor

    return keys_tensor([sample_key(seed, ids[i], epoch) for i in idx.tolist()], device)
