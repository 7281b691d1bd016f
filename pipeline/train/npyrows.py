"""Rows of a packed ``.npy`` array, read per batch: never the whole array.

``np.load(mmap_mode="r")`` reads the header (shape, dtype, where the data starts)
and the rows are then copied with ``os.pread``. Not through the memory map itself:
every page a map touches counts in the process's resident set until the kernel
reclaims it, so one epoch over a mapped 100k-row version grew the trainer's peak
RSS by the array's size; ``pread`` copies the rows a batch needs and leaves the
file's pages to the page cache, which is not the process's memory.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipeline.errors import InputError


class NpyRows:
    """``take(idx)``: rows ``idx`` of a C-ordered ``.npy`` file, in that order."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            header = np.load(self.path, mmap_mode="r")  # maps the file; no data page is read
        except (OSError, ValueError) as err:
            raise InputError(f"{self.path}: cannot read the version's array ({err})") from None
        if not header.flags.c_contiguous and header.ndim > 1:
            raise InputError(f"{self.path}: a Fortran-ordered array; re-run the augment stage")
        self.shape, self.dtype, self.offset = tuple(header.shape), header.dtype, int(header.offset)
        del header
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._fd: int | None = None
        self._pid = -1

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict:  # DataLoader workers open their own descriptor
        return {k: v for k, v in self.__dict__.items() if k not in ("_fd", "_pid")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _fd=None, _pid=-1)

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None and self._pid == os.getpid():
            os.close(self._fd)

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked worker opens its own
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def take(self, idx) -> np.ndarray:
        """uint8 (len(idx), *row shape): one ``pread`` per run of consecutive indices."""
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        out = np.empty((len(idx), *self.shape[1:]), dtype=self.dtype)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.shape[0]):
            raise IndexError(f"{self.path}: row index out of range 0..{self.shape[0] - 1}")
        buf = memoryview(out.reshape(-1).view(np.uint8))
        fd, rb = self._descriptor(), self.row_bytes
        j = 0
        while j < len(idx):
            k = j + 1
            while k < len(idx) and idx[k] == idx[k - 1] + 1:
                k += 1
            want, at, done = (k - j) * rb, self.offset + int(idx[j]) * rb, 0
            while done < want:
                got = os.preadv(fd, [buf[j * rb + done:k * rb]], at + done)
                if got == 0:
                    raise InputError(f"{self.path}: the file ends inside row {int(idx[j])}; re-run the augment stage")
                done += got
            j = k
        return out
