"""Sequential writers that hash what they write.

The packed split arrays are written front to back with plain ``write`` calls
rather than through a memory map: written pages go to the page cache, not to the
process's resident set, so peak memory stays flat however many images a split
holds. The ``.npy`` header is numpy's own, so ``np.load(mmap_mode="r")`` reads it.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np


class NpyWriter:
    """Write an ``(n, *shape)`` array of ``dtype`` in order, chunk by chunk."""

    def __init__(self, path: Path, dtype, shape: tuple[int, ...]):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.shape = shape
        self.expected = int(np.prod(shape, dtype=np.int64)) * self.dtype.itemsize
        self.written = 0
        self.sha = hashlib.sha256()
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": tuple(int(s) for s in shape)}
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, header)
        self._f = open(self.path, "wb")
        self._f.write(buf.getvalue())
        self.sha.update(buf.getvalue())

    def write(self, chunk: np.ndarray) -> None:
        data = np.ascontiguousarray(chunk, dtype=self.dtype).tobytes()
        self._f.write(data)
        self.sha.update(data)
        self.written += len(data)

    def close(self) -> str:
        """Close the file, check it is complete, and return its sha256."""
        self._f.close()
        if self.written != self.expected:
            raise RuntimeError(f"{self.path}: wrote {self.written} bytes, expected {self.expected}")
        return self.sha.hexdigest()


def write_png(path: Path, pixels: np.ndarray) -> str:
    """Write one uint8 (H, W, C) image as PNG with fixed settings; return its sha256."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6, optimize=False)
    data = buf.getvalue()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()
