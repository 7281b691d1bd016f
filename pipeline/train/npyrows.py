"""Rows of a packed ``.npy`` array, read per batch: never the whole array.

numpy's format reader gives the header (shape, dtype, where the rows start) and the
rows a batch needs are copied with ``os.pread``. Not through a memory map
(``np.load(mmap_mode="r")``): every page a map touches counts in the process's
resident set until the kernel reclaims it, so an epoch over a mapped version grows
the trainer's peak RSS towards the array's size, and the map takes the array's size
in address space; ``pread`` leaves the file's pages to the page cache, which is not
the process's memory.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipeline.core.errors import InputError


class NpyRows:
    """``take(idx)``: rows ``idx`` of a C-ordered ``.npy`` file, in that order."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:  # the header only: shape, dtype, where the rows start
                version = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read_header(f)
                self.offset = f.tell()
        except (OSError, ValueError) as err:
            raise InputError(f"{self.path}: cannot read the version's array ({err})") from None
        if fortran and len(shape) > 1:
            raise InputError(f"{self.path}: a Fortran-ordered array; re-run the augment stage")
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
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
