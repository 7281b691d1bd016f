"""Safe extraction of tar and zip archives (no tar-slip, no zip-slip).

Every member is checked before anything is written: an absolute path, a drive
letter, a ``..`` component, a symbolic or hard link, a device or FIFO is refused
with an error naming the member. Only regular files and directories are
extracted, by copying their bytes to a path built from the checked name, so
nothing can land outside ``dest``. A truncated or corrupt archive is an error too.
"""

from __future__ import annotations

import errno
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from pipeline.errors import DownloadError

_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError)


def member_path(name: str, archive: str) -> PurePosixPath:
    """The relative path a member may be written to; DownloadError if it points outside."""
    posix = name.replace("\\", "/")  # a backslash is a separator on Windows: judge it as one
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise _unsafe(archive, name, "absolute path")
    parts = [p for p in posix.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _unsafe(archive, name, "'..' path component")
    if not parts:
        raise _unsafe(archive, name, "empty path")
    return PurePosixPath(*parts)


def _unsafe(archive: str, member: str, why: str) -> DownloadError:
    return DownloadError(f"{archive}: refusing unsafe archive member {member!r} ({why}); nothing "
                         "was extracted. The archive is not the official one: fetch it again "
                         "from the upstream URL or a trusted --mirror.")


def _corrupt(archive: str, err: BaseException) -> DownloadError:
    return DownloadError(f"{archive}: truncated or corrupt archive ({type(err).__name__}: {err}). "
                         "The bytes on disk are bad even if a checksum matched them "
                         "(--checksums/--from): fetch the file again.")


def _tar_plan(tf: tarfile.TarFile, archive: str) -> list[tuple[tarfile.TarInfo, PurePosixPath]]:
    plan = []
    for m in tf.getmembers():
        rel = member_path(m.name, archive)
        if m.issym() or m.islnk():
            raise _unsafe(archive, m.name, f"{'symbolic' if m.issym() else 'hard'} link to {m.linkname!r}")
        if not (m.isfile() or m.isdir()):
            raise _unsafe(archive, m.name, "device, FIFO or other special file")
        plan.append((m, rel))
    return plan


def _zip_plan(zf: zipfile.ZipFile, archive: str) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    plan = []
    for info in zf.infolist():
        rel = member_path(info.filename, archive)
        kind = stat.S_IFMT(info.external_attr >> 16)  # Unix mode, when the zip was made on Unix
        if kind == stat.S_IFLNK:
            raise _unsafe(archive, info.filename, "symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise _unsafe(archive, info.filename, "device, FIFO or other special file")
        plan.append((info, rel))
    return plan


def _write(dest: Path, rel: PurePosixPath, is_dir: bool, open_member) -> None:
    target = dest.joinpath(*rel.parts)
    if is_dir:
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with open_member() as src, open(target, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract a tar (any compression) or zip ``archive`` into ``dest``; return ``dest``."""
    archive, dest = Path(archive), Path(dest)
    label = archive.name
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info, rel in _zip_plan(zf, label):
                    _write(dest, rel, info.is_dir(), lambda info=info: zf.open(info))
        else:
            with tarfile.open(archive, "r:*") as tf:
                for m, rel in _tar_plan(tf, label):
                    _write(dest, rel, m.isdir(), lambda m=m: tf.extractfile(m))
    except _CORRUPT as err:
        raise _corrupt(label, err) from None
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise DownloadError(f"disk full while extracting {label} into {dest}: free some space") from None
        if err.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise DownloadError(f"{label}: members clash ({err}); the archive is malformed") from None
        raise
    return dest
