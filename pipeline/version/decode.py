"""Decoding source images for a version: bytes hashed, converted, resized, in threads.

Each image is decoded independently (PIL and torch release the GIL), so the
result does not depend on how many threads run or in which order they finish.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Decoded:
    pixels: np.ndarray  # uint8 (C, H, W) at the output size
    sha256: str  # of the source file's bytes
    size: tuple[int, int]  # (height, width) before the resize


def to_chw(img, h: int, w: int, c: int):
    """A PIL image as a uint8 (C, H, W) tensor with ``c`` channels at ``h`` x ``w``.

    The one resize of the project: versions, traces, previews and ``predict`` all
    come through here, so a model sees at prediction time what it was trained on.
    """
    import torch

    a = np.array(img.convert("L" if c == 1 else "RGB"), dtype=np.uint8)
    t = torch.from_numpy(a[:, :, None] if a.ndim == 2 else a).permute(2, 0, 1)
    if t.shape[1:] != (h, w):
        # Resize in float and round once: the same rounding the augmentation uses.
        t = torch.nn.functional.interpolate(t[None].float(), size=(h, w), mode="bilinear",
                                            antialias=True, align_corners=False)[0]
        t = t.round().clamp(0, 255).to(torch.uint8)
    return t


def decode(data: bytes, h: int, w: int, c: int) -> Decoded:
    """Decode one stored image's bytes as uint8 (C, H, W), converted to ``c`` channels and resized."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        size = (img.height, img.width)
        t = to_chw(img, h, w, c)
    return Decoded(np.ascontiguousarray(t.numpy()), hashlib.sha256(data).hexdigest(), size)
