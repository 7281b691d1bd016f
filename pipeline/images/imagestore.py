"""Where a canonical dataset keeps its image bytes: a few tar packs, not a file per image.

Ingest appends every stored image to ``images/00000.tar`` (a new pack every
``PACK_BYTES``), in sample order, from one process; a sample's ``image`` is then
``images/00000.tar/<stem>.<ext>``, the pack and the member in it.

Why packs: on the reference VM creating a file costs 0.5-0.7 ms of kernel time,
as much as decoding a 500x375 JPEG, and two workers creating files in one
directory slow each other down further (ingest swung between ~830 and ~1,350
images/s from run to run). Appending the same bytes to one open file costs
~0.02 ms. DVC also hashes, caches and links a handful of packs far faster than
tens of thousands of small files.

The packs are plain uncompressed POSIX tar with fixed metadata (mtime 0, uid and
gid 0, mode 0644), so equal inputs give equal bytes and any tool can list or
extract them (``tar tf images/00000.tar``). Beside each pack ``PackWriter`` writes
its index, ``images/00000.tar.idx`` (``pipeline.images.packindex``): a reader looks a
member up there and reads the image with its tar header in one ``pread``, so
reading a few images costs the same in a dataset of any size. A pack without a
valid index (older datasets, another tool's tar) is indexed by reading its headers
once, one per member.

A sample whose ``image`` names no ``.tar`` pack is read as a plain file under the
dataset root: datasets built by hand (tests, benchmarks) and by older versions.
"""

from __future__ import annotations

import os
import tarfile
import threading
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pipeline.core.errors import InputError
from pipeline.core.inputfile import InputRefused, open_regular
from pipeline.images.packindex import INDEX_SUFFIX, PackIndex, index_bytes

if TYPE_CHECKING:
    import numpy as np

PACK_BYTES = 1 << 30  # start a new pack once one holds this many bytes
PACK_SUFFIX = ".tar"


def split_ref(ref: str) -> tuple[str, str] | None:
    """``images/00000.tar/ab.jpg`` -> ``("images/00000.tar", "ab.jpg")``; None for a plain file."""
    parts = ref.split("/")
    if "" in parts or "." in parts:  # not as ingest writes it: let pathlib normalize it
        parts = list(PurePosixPath(ref).parts)
    for i, part in enumerate(parts[:-1]):
        if part.endswith(PACK_SUFFIX):
            return "/".join(parts[: i + 1]), "/".join(parts[i + 1:])
    return None


RECORD = 10240  # tar's record size: archives are padded to a multiple of it


_HEAD_FIXED = b"0000644\0" + b"0000000\0" * 2  # mode, uid, gid
_MTIME = b"00000000000\0"
_TAIL = b"0" + bytes(100) + b"ustar\x0000" + bytes(32 + 32 + 8 + 8 + 155 + 12)  # type, link, magic, ...
# Every byte but the name's and the size's is fixed; the checksum field counts as 8 spaces.
_FIXED_SUM = sum(_HEAD_FIXED) + sum(_MTIME) + 8 * 32 + sum(_TAIL)


def ustar_header(name: str, size: int) -> bytes:
    """The 512-byte POSIX ustar header of a regular file, metadata fixed: mode 0644,
    uid/gid 0, mtime 0, no owner names. Written by hand rather than through
    ``tarfile``: five times faster per member, and the bytes are pinned here (a
    golden test) rather than by whatever a Python version's ``tarfile`` writes, so
    equal images give equal packs whatever Python wrote them. Readers compare a
    member's header with it to trust a pack index."""
    raw = name.encode("utf-8")
    if len(raw) > 100:
        raise ValueError(f"member name {name!r} is longer than ustar's 100 bytes")
    if size >= 8 ** 11:
        raise ValueError(f"member {name!r} of {size} bytes is over ustar's 8 GiB")
    size_field = b"%011o\0" % size
    checksum = _FIXED_SUM + sum(raw) + sum(size_field)
    return b"".join((raw.ljust(100, b"\0"), _HEAD_FIXED, size_field, _MTIME, b"%06o\0 " % checksum, _TAIL))


class PackWriter:
    """Append images to numbered tar packs under ``root/images``; deterministic bytes.

    Use as a context manager; ``add`` returns the reference to store in the sample.
    """

    def __init__(self, root: Path, folder: str = "images", pack_bytes: int | None = None):
        self.root = Path(root)
        self.folder = folder
        self.pack_bytes = pack_bytes or PACK_BYTES
        self._file = None
        self._offset = 0
        self._index = -1
        self._names: set[str] = set()
        self._members: list[tuple[bytes, int, int]] = []  # the open pack's (name, header offset, size)

    def __enter__(self) -> "PackWriter":
        (self.root / self.folder).mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()

    def abandon(self) -> None:
        """Close without the end-of-archive marker, after an error: the pack is
        incomplete and its directory is being thrown away. Never raises, so the error
        that stopped the run (a full disk, say) is the one reported."""
        if self._file is not None:
            f, self._file = self._file, None
            try:
                f.close()  # flushing may fail again on a full disk
            except OSError:
                pass

    def close(self) -> None:
        if self._file is not None:
            # The end-of-archive marker (two zero blocks), padded to tar's 10 KiB record.
            end = self._offset + 1024
            self._file.write(bytes(1024 + -end % RECORD))
            self._file.close()
            self._file = None
            # Written after its pack is complete, inside the caller's temporary output
            # directory (atomic as a whole); an index cut short fails its length check
            # and the reader scans the pack instead.
            size = end + -end % RECORD
            (self.root / (self._pack_name() + INDEX_SUFFIX)).write_bytes(index_bytes(size, self._members))
            self._members = []

    def _pack_name(self) -> str:
        return f"{self.folder}/{self._index:05d}{PACK_SUFFIX}"

    def add(self, name: str, data: bytes) -> str:
        """Append ``data`` as member ``name``; return ``images/NNNNN.tar/name``."""
        if name in self._names:
            raise ValueError(f"image {name!r} stored twice")  # stems are unique per sample id
        if self._file is None or (self._offset > 0 and self._offset + len(data) > self.pack_bytes):
            self.close()
            self._index += 1
            self._file = open(self.root / self._pack_name(), "wb")
            self._offset = 0
        self._names.add(name)
        f = self._file
        f.write(ustar_header(name, len(data)))
        f.write(data)
        f.write(bytes(-len(data) % 512))
        self._members.append((name.encode("utf-8"), self._offset, len(data)))
        self._offset += 512 + len(data) + -len(data) % 512
        return f"{self._pack_name()}/{name}"


class _Pack:
    """An open pack: its file descriptor, and either its index file or its scanned headers."""

    def __init__(self, fd: int, size: int, index: PackIndex | None, members: dict[str, tuple[int, int]] | None):
        self.fd = fd
        self.size = size
        self.index = index  # the pack's .idx, while it has proved right
        self.members = members  # name -> (data offset, size), once the headers were scanned

    def close(self) -> None:
        if self.index is not None:
            self.index.close()
        os.close(self.fd)


class ImageReader:
    """Read stored images of one dataset root; safe to share between threads.

    Each pack is opened on first use and kept open, with its index file when it has
    a valid one (else its headers are scanned once); pickling (for worker processes)
    drops the open files, which are re-opened on demand.
    """

    def __init__(self, root: Path | None):
        self.root = Path(root) if root is not None else None
        self._lock = threading.Lock()
        self._packs: dict[str, _Pack] = {}

    def __getstate__(self) -> dict:
        return {"root": self.root}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["root"])  # type: ignore[misc]

    def __del__(self) -> None:
        for pack in getattr(self, "_packs", {}).values():
            try:
                pack.close()
            except (OSError, BufferError):
                pass

    def pixels(self, ref: str, channels: int) -> np.ndarray:
        """uint8 (H, W, channels) of ``ref``, decoded from its stored bytes."""
        import io

        import numpy as np
        from PIL import Image

        with Image.open(io.BytesIO(self.read(ref))) as img:
            a = np.asarray(img.convert("L" if channels == 1 else "RGB"))
        return a[:, :, None] if a.ndim == 2 else a

    def read(self, ref: str) -> bytes:
        """The stored bytes of ``ref`` (a pack member or a plain file under the root)."""
        if self.root is None:
            raise InputError(f"image {ref!r}: this dataset has no directory to read images from")
        where = split_ref(ref)
        if where is None:
            try:
                return (self.root / ref).read_bytes()
            except OSError as err:
                raise InputError(f"{self.root / ref}: cannot read the stored image ({err.strerror})") from None
        name, member = where
        pack = self._pack(name)
        index = pack.index
        if index is not None:
            found = index.find(member)
            if found is not None and found[0] + 512 + found[1] <= pack.size:
                offset, size = found
                # The member's tar header comes with its data: the index is trusted only
                # where the pack holds exactly the header PackWriter wrote for this name
                # and size (so name, size, type and checksum all agree).
                data = _pread(pack.fd, 512 + size, offset, self._lock)
                if len(data) == 512 + size and data[:512] == _expected_header(member, size):
                    return data[512:]
            # Missing from the index, or the index points elsewhere: ask the pack itself.
        members = self._scan(name, pack)
        if member not in members:
            raise InputError(f"{self.root / name}: has no member {member!r}; the dataset is incomplete, "
                             "re-run `pipeline ingest`")
        offset, size = members[member]
        data = _pread(pack.fd, size, offset, self._lock)
        if len(data) != size:
            raise InputError(f"{self.root / name}: member {member!r} is truncated; re-run `pipeline ingest`")
        return data

    def _pack(self, name: str) -> _Pack:
        with self._lock:
            if name not in self._packs:
                path = self.root / name  # type: ignore[operator]
                try:
                    fd, st = open_regular(path)  # a FIFO here fails at once instead of waiting for a writer
                except InputRefused as err:
                    raise InputError(f"{path}: cannot read the image pack ({err}); re-run `pipeline ingest`") from None
                size = st.st_size
                self._packs[name] = _Pack(fd, size, PackIndex.open(Path(str(path) + INDEX_SUFFIX), size), None)
            return self._packs[name]

    def _scan(self, name: str, pack: _Pack) -> dict[str, tuple[int, int]]:
        """The pack's members from its own headers (read once); its index is no longer used."""
        with self._lock:
            pack.index = None  # left to the collector: another thread may still be searching it
            if pack.members is None:
                path = self.root / name  # type: ignore[operator]
                try:
                    # The descriptor opened and checked in _pack, read from the start.
                    with os.fdopen(os.dup(pack.fd), "rb") as f:  # a dup shares the offset: rewind
                        f.seek(0)
                        members = _scan_ustar(f)
                        if members is None:  # not the plain layout PackWriter writes: let tarfile read it
                            f.seek(0)
                            with tarfile.open(fileobj=f, mode="r:") as tar:
                                members = {m.name: (m.offset_data, m.size) for m in tar if m.isfile()}
                except (OSError, tarfile.TarError) as err:
                    raise InputError(f"{path}: cannot read the image pack ({err}); re-run `pipeline ingest`") from None
                pack.members = members
            return pack.members


def _expected_header(member: str, size: int) -> bytes | None:
    try:
        return ustar_header(member, size)
    except (ValueError, UnicodeEncodeError):  # a name PackWriter cannot have written
        return None


def _header(header: bytes) -> tuple[str, int, bool] | None:
    """``(name, size, checksum right)`` of a regular-file ustar header with a short name;
    None for anything else (pax or GNU extensions, long names, links, a short read)."""
    if len(header) < 512 or header[257:263] != b"ustar\x00" or header[156:157] not in (b"0", b"\x00") \
            or header[345:346] != b"\x00":
        return None
    try:
        stored = int(header[148:156].rstrip(b"\x00 ") or b"0", 8)
        size = int(header[124:136].rstrip(b"\x00 ") or b"0", 8)
    except ValueError:
        return None
    ok = stored == sum(header[:148]) + 256 + sum(header[156:])  # the checksum field counts as spaces
    return header[:100].rstrip(b"\x00").decode("utf-8", "surrogateescape"), size, ok


def _scan_ustar(f) -> dict[str, tuple[int, int]] | None:
    """Member name -> (data offset, size) of a plain ustar file, header by header.

    Ten times faster than ``tarfile`` (~2.5 s per 100,000 members there), which
    builds a TarInfo per member. Checksums are verified. Returns None at anything
    but a regular-file ustar header with a short name (pax or GNU extensions, long
    names, links), so the caller falls back to ``tarfile`` for such archives.
    """
    index: dict[str, tuple[int, int]] = {}
    offset = 0
    while True:
        f.seek(offset)
        header = f.read(512)
        if not header or header.count(0) == 512:  # end of archive
            return index
        fields = _header(header)  # None: cut short, or not plain ustar; let tarfile judge
        if fields is None:
            return None
        name, size, ok = fields
        if not ok:
            raise tarfile.ReadError(f"bad header checksum at byte {offset}")
        index[name] = (offset + 512, size)
        offset += 512 + -(-size // 512) * 512


def _pread(fd: int, size: int, offset: int, lock: threading.Lock) -> bytes:
    """Read ``size`` bytes at ``offset``; positional where the OS has it (not Windows)."""
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    with lock:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, size)
