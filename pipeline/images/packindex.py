"""The index beside each image pack: find one member without reading the pack's headers.

Scanning a pack's ustar headers costs a read per member (0.66 s per 100,000 images
on the reference VM), and a command that shows or traces a few samples paid it for
every pack it touched. ``PackWriter`` therefore writes ``images/NNNNN.tar.idx``
beside each pack it closes: a fixed-width table of the pack's members sorted by
name, which a reader maps into memory and binary-searches, so finding a member
touches a handful of pages whatever the pack holds.

Layout (little-endian): a 32-byte header, ``MAGIC``, the pack's size in bytes, the
member count, the width ``W`` of a name slot; then one record per member, sorted by
name: the UTF-8 name padded with NUL to ``W`` bytes (ustar names hold no NUL, so the
padded order is the names' byte order), the offset of the member's 512-byte tar
header in the pack, and its size. The bytes depend only on the pack's members, so
equal inputs give equal indexes, as they give equal packs.

The index is a shortcut, never the authority: a reader uses it only when it
matches the pack's size, and checks the tar header it points at (name, size,
checksum) before returning a byte; anything else (no index: datasets from before
it, a stale or damaged one) sends the reader back to scanning the pack.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

MAGIC = b"PKIDX\x00\x01\n"  # format version 1
INDEX_SUFFIX = ".idx"
_HEADER = struct.Struct("<8sQQI4x")
_NUMBERS = struct.Struct("<QQ")  # header offset, size
_SEARCHES_BEFORE_TABLE = 256


def index_bytes(pack_size: int, members: list[tuple[bytes, int, int]]) -> bytes:
    """The index of a pack of ``pack_size`` bytes holding ``(name, header offset, size)`` members."""
    width = max((len(name) for name, _, _ in members), default=0)
    out = [_HEADER.pack(MAGIC, pack_size, len(members), width)]
    for name, offset, size in sorted(members):
        out.append(name.ljust(width, b"\0") + _NUMBERS.pack(offset, size))
    return b"".join(out)


class PackIndex:
    """A pack's index mapped into memory; ``find`` is a binary search over its records."""

    def __init__(self, view: mmap.mmap | bytes, count: int, width: int):
        self._view = view
        self._count = count
        self._width = width
        self._record = width + _NUMBERS.size
        self._searches = 0
        self._table: dict[bytes, tuple[int, int]] | None = None

    @classmethod
    def open(cls, path: Path, pack_size: int) -> "PackIndex | None":
        """The index at ``path`` if it is well formed and describes a pack of ``pack_size``
        bytes; None when it is missing, damaged or stale (the caller scans the pack)."""
        from pipeline.core.inputfile import InputRefused, open_regular

        try:
            with open(open_regular(path)[0], "rb") as f:  # a FIFO or device here is no index
                head = f.read(_HEADER.size)
                if len(head) < _HEADER.size:
                    return None
                magic, size, count, width = _HEADER.unpack(head)
                length = _HEADER.size + count * (width + _NUMBERS.size)
                f.seek(0, 2)
                if magic != MAGIC or size != pack_size or f.tell() != length or not 0 < width <= 100:
                    return None
                view = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError, InputRefused):
            return None
        return cls(view, count, width)

    def close(self) -> None:
        if isinstance(self._view, mmap.mmap):
            self._view.close()

    def find(self, name: str) -> tuple[int, int] | None:
        """``(header offset, size)`` of member ``name``, or None where the index has none."""
        key = name.encode("utf-8", "surrogateescape")
        if len(key) > self._width or b"\0" in key:
            return None
        key = key.ljust(self._width, b"\0")
        if self._table is not None:
            return self._table.get(key)
        self._searches += 1
        if self._searches > max(_SEARCHES_BEFORE_TABLE, self._count // 32):
            # A command reading much of the pack (augment, export): one pass over the
            # index into a dict (~0.3 us a record) beats ~9 us of search per image.
            rows = struct.iter_unpack(f"<{self._width}sQQ", self._view[_HEADER.size:])
            self._table = {name: (offset, size) for name, offset, size in rows}
            return self._table.get(key)
        lo, hi = 0, self._count
        while lo < hi:
            mid = (lo + hi) // 2
            at = _HEADER.size + mid * self._record
            slot = self._view[at:at + self._width]
            if slot == key:
                return _NUMBERS.unpack_from(self._view, at + self._width)
            if slot < key:
                lo = mid + 1
            else:
                hi = mid
        return None
