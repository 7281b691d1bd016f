"""Reading a dataset version's splits for training: labels in memory, images per batch.

Any classification version: packed arrays are read a batch of rows at a time
(``NpyRows``), images stored as files are decoded per batch; so memory does not
grow with the version. Images are brought to the model's input size by the one
resize (``pipeline.version.resize.to_chw``) when they are not at it already.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.core.errors import InputError
from pipeline.core.resize_modes import DEFAULT_FIT
from pipeline.train.npyrows import NpyRows
from pipeline.core.seeding import key64, sample_key


@dataclass(frozen=True)
class VersionInfo:
    classes: tuple[str, ...]
    shape: tuple  # (H, W, C); H and W None when each row keeps its own size
    mean: tuple[float, ...]
    std: tuple[float, ...]
    digest: str = ""  # blake2b of card.json: identifies the version a run trained on
    resize: tuple[str, int] = DEFAULT_FIT  # augment.resize and pad_value: predict resizes alike


def read_card(version: Path) -> VersionInfo:
    from pipeline.version.dataset import AUGMENT_AGAIN, CARD, read_card as read_version_card

    card_path = Path(version) / CARD
    if not os.path.lexists(card_path):
        raise InputError(f"{card_path}: not a dataset version (run the augment stage first)")
    card = read_version_card(version)
    try:
        train = card.splits["train"]
        return VersionInfo(
            classes=card.classes, shape=card.image_shape,
            mean=train.pixel_mean, std=tuple(max(s, 1e-6) for s in train.pixel_std),
            digest=hashlib.blake2b(card_path.read_bytes(), digest_size=8).hexdigest(),
            resize=card.resize,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(f"{card_path}: not a complete card ({type(err).__name__}: {err}); {AUGMENT_AGAIN}") from None


@dataclass(frozen=True)
class InputSize:
    """What the model takes, and how any stored image is brought to it."""

    height: int
    width: int
    channels: int
    resize: tuple[str, int]  # (mode, pad value) of ``pipeline.version.resize.to_chw``
    chosen: str = "the version's size"  # said in the train line: where the size came from


def checkpoint_input(ckpt: dict) -> InputSize:
    """The InputSize a checkpoint was trained at: its shape and resize (evaluate, predict)."""
    h, w, c = ckpt["shape"]
    return InputSize(int(h), int(w), int(c), tuple(ckpt.get("resize", ("stretch", 114))))


def fit_image(img, size: InputSize) -> torch.Tensor:
    """A PIL image as the model takes it: uint8 (C, H, W) at ``size`` by the one resize.
    Training rows and ``predict``'s images both come through here."""
    from pipeline.version.resize import to_chw

    return to_chw(img, size.height, size.width, size.channels, *size.resize)[0]


@dataclass(frozen=True)
class SplitRows:
    """One split of a version: labels in memory, images read per batch (``read``).

    Packed rows come from the array file (``NpyRows``: only the rows asked for);
    images stored as files are decoded when read. Either is brought to an
    ``InputSize`` by the one resize (``to_chw``) when its size differs."""

    labels: torch.Tensor  # int64 (N,)
    channels: int
    packed: NpyRows | None = None  # (N, H, W, C)
    files: tuple[Path, ...] = ()  # one per row, when stored as files
    sizes: tuple[tuple[int, int], ...] = ()  # (height, width) per row, when stored as files
    # Offline mixup/cutmix (versions that have the arrays): the partner's class and
    # the weight of ``labels`` (1.0, mix_label == label: not mixed). None: hard labels.
    mix_labels: torch.Tensor | None = None  # int64 (N,)
    mix_weights: torch.Tensor | None = None  # float32 (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def fits(self, size: InputSize) -> bool:
        """Whether every row is already at ``size`` (packed rows are read as they are)."""
        if self.packed is not None:
            return self.packed.shape[1:3] == (size.height, size.width)
        return all(hw == (size.height, size.width) for hw in self.sizes)

    def read(self, idx, size: InputSize) -> torch.Tensor:
        """uint8 (B, C, H, W) of rows ``idx`` at ``size``, channels_last strides."""
        idx = [int(i) for i in idx]
        if self.packed is not None and self.packed.shape[1:3] == (size.height, size.width):
            # (B, H, W, C) -> (B, C, H, W) view: channels_last memory, which conv kernels prefer.
            return torch.from_numpy(self.packed.take(idx)).permute(0, 3, 1, 2)
        from PIL import Image

        out = torch.empty((len(idx), size.channels, size.height, size.width), dtype=torch.uint8)
        for j, i in enumerate(idx):
            if self.packed is not None:
                a = self.packed.take([i])[0]
                img = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a)
            else:
                img = _open_image(self.files[i])
            with img:
                out[j] = fit_image(img, size)
        return out.contiguous(memory_format=torch.channels_last)


def _open_image(path: Path):
    from PIL import Image

    try:
        img = Image.open(path)
        img.load()
    except OSError as err:
        raise InputError(f"{path}: cannot read the version's image ({err}); re-run the augment stage") from None
    return img


def load_split(version: Path, split: str) -> SplitRows:
    """A split's labels, and its images as packed rows or files (nothing decoded yet)."""
    from pipeline.record import read_jsonl
    from pipeline.version.dataset import AUGMENT_AGAIN

    version = Path(version)
    labels_path = version / f"{split}_labels.npy"
    if not labels_path.is_file():
        raise InputError(f"{labels_path}: split {split!r} missing from the dataset version")
    labels = np.load(labels_path)
    if labels.size and labels.min() < 0:
        raise InputError(f"{version}: {int((labels < 0).sum())} {split} images have no class label "
                         "(detection data); train and evaluate need one label per image")
    mix_labels = mix_weights = None
    if (version / f"{split}_mix_labels.npy").is_file():  # versions before offline mixing lack them
        mix_labels = torch.from_numpy(np.load(version / f"{split}_mix_labels.npy"))
        mix_weights = torch.from_numpy(np.load(version / f"{split}_mix_weights.npy"))
        if len(mix_labels) != len(labels) or len(mix_weights) != len(labels):
            raise InputError(f"{version}: {split}_mix_labels.npy / {split}_mix_weights.npy do not have one "
                             f"entry per image ({len(labels)}); re-run the augment stage")
    shape = read_card(version).shape
    common = dict(labels=torch.from_numpy(labels), channels=int(shape[2]), mix_labels=mix_labels, mix_weights=mix_weights)
    if (version / f"{split}_images.npy").is_file():
        packed = NpyRows(version / f"{split}_images.npy")
        if len(packed) != len(labels):
            raise InputError(f"{version}: {split}_images.npy has {len(packed)} rows for {len(labels)} labels; "
                             f"{AUGMENT_AGAIN}")
        return SplitRows(packed=packed, **common)
    # Stored as files: the manifest names each row's file and its size.
    rows = [r for r in read_jsonl(version / "manifest.jsonl",
                                  lambda d: (d["split"], int(d["index"]), d.get("file"), d.get("size")),
                                  AUGMENT_AGAIN) if r[0] == split]
    files: list = [None] * len(labels)
    sizes: list = [None] * len(labels)
    for _, index, file, hw in rows:
        if not 0 <= index < len(labels) or file is None:
            raise InputError(f"{version}: manifest row {split}/{index} names no image file; {AUGMENT_AGAIN}")
        files[index] = version / file
        sizes[index] = tuple(hw) if hw else tuple(shape[:2])
    if None in files:
        raise InputError(f"{version}: {files.count(None)} {split} rows have no image file; {AUGMENT_AGAIN}")
    return SplitRows(files=tuple(files), sizes=tuple(sizes), **common)


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
