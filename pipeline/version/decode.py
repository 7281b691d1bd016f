"""Decoding source images for a version: bytes hashed, converted, resized, in threads.

Each image is decoded independently (PIL and torch release the GIL), so the
result does not depend on how many threads run or in which order they finish.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np

from pipeline.core.resize_modes import DEFAULT_RESIZE, PAD_GREY
from pipeline.version.resize import Fit, to_chw  # noqa: F401  (to_chw: the one resize, re-exported)


@dataclass(frozen=True)
class Decoded:
    pixels: np.ndarray  # uint8 (C, H, W) at the output size
    sha256: str  # of the source file's bytes
    fit: Fit  # where the source went: its size, and the matrix that moves its targets

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) before the resize."""
        return self.fit.src_hw


def decode(data: bytes, h: int, w: int, c: int, mode: str = DEFAULT_RESIZE, pad: int = PAD_GREY) -> Decoded:
    """Decode one stored image's bytes as uint8 (C, H, W), converted to ``c`` channels and resized
    (``mode``, see ``pipeline.version.resize``)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        t, f = to_chw(img, h, w, c, mode, pad)
    return Decoded(np.ascontiguousarray(t.numpy()), hashlib.sha256(data).hexdigest(), f)
