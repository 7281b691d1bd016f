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


def decode(data: bytes, h: int, w: int, c: int) -> Decoded:
    """Decode one stored image's bytes as uint8 (C, H, W), converted to ``c`` channels and resized."""
    import torch
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img = img.convert("L" if c == 1 else "RGB")
        a = np.array(img, dtype=np.uint8)
    a = a[:, :, None] if a.ndim == 2 else a
    size = (a.shape[0], a.shape[1])
    t = torch.from_numpy(a).permute(2, 0, 1)
    if size != (h, w):
        # Resize in float and round once: the same rounding the augmentation uses.
        t = torch.nn.functional.interpolate(t[None].float(), size=(h, w), mode="bilinear",
                                            antialias=True, align_corners=False)[0]
        t = t.round().clamp(0, 255).to(torch.uint8)
    return Decoded(np.ascontiguousarray(t.numpy()), hashlib.sha256(data).hexdigest(), size)
