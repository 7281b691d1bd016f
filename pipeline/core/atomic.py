"""Atomic outputs: a failed, interrupted or killed run never leaves half a result.

* **Directories** (``atomic_dir``): the command writes into a temporary directory
  ``.<name>.tmp-*`` beside the destination (same filesystem) holding our marker
  (``pipeline.core.outputs``) and an ``.owner`` file (pid and process start time);
  only when everything succeeded is the destination checked again, the owner file
  removed and the directory renamed into place. On any error or interrupt the
  temporary directory is removed (with SIGINT/SIGTERM held back meanwhile). After
  SIGKILL it stays, invisible to DVC (not a declared out), and the next command
  writing the same destination removes it (``clean_stale``: our naming, our marker
  or owner file, owner process gone).
* **Single files** (``atomic_write_bytes``/``atomic_write_text``/``atomic_file``):
  written to a temporary file beside the target, flushed, fsynced and renamed.
* **Permissions:** directories and files get the modes the umask allows (as
  ``mkdir`` and ``open`` would), not ``mkdtemp``'s 0700 / ``mkstemp``'s 0600.
* **Faults** (``output_errors``): a full disk, an exceeded quota, a read-only or
  forbidden target become one ``PipelineError`` naming the path (and the free
  space), so the CLI prints one line and exits 2; cleanup never raises over it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

from pipeline.core.errors import PipelineError
from pipeline.core.interrupts import held_signals
from pipeline.core.outputs import MARKER, claim_dir, claim_file, write_marker

OWNER = ".owner"  # "<pid> <start time>" of the run writing a temporary directory
STALE_UNOWNED_S = 60.0  # a temp dir without an owner file this old was killed before writing it
_FAULTS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
           errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
           errno.EPERM: "operation not permitted"}


class OutputFault(PipelineError):
    """The output cannot be written (disk full, quota, read-only, permissions)."""


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _start_time(pid: int) -> str:
    """Process start time (Linux: field 22 of /proc/<pid>/stat); "" where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return ""


def _alive(pid: int, start: str) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not start or _start_time(pid) in ("", start)  # another process reusing the pid is not the owner


def _owner(directory: Path) -> tuple[int, str] | None:
    try:
        pid, _, start = (directory / OWNER).read_text().strip().partition(" ")
        return int(pid), start
    except (OSError, ValueError):
        return None


def clean_stale(dest: Path) -> list[Path]:
    """Remove temporary directories beside ``dest`` left by our runs that died."""
    dest = Path(dest)
    removed = []
    if not dest.parent.is_dir():
        return removed
    for p in sorted(dest.parent.glob(f".{dest.name}.tmp-*")) + sorted(dest.parent.glob(f".{dest.name}.old-*")):
        if p.is_symlink() or not p.is_dir():
            continue
        owner = _owner(p)
        if owner is None and ".old-" in p.name and (p / MARKER).is_file():  # a replaced output of ours
            try:
                owner = (int(p.name.rsplit("-", 1)[1]), "")
            except ValueError:
                owner = None
        if owner is not None:
            if owner[0] == os.getpid() or _alive(*owner):
                continue
        elif not (p / MARKER).is_file():
            try:  # not ours, unless it is an empty directory a killed run had just made
                with os.scandir(p) as it:
                    if any(it) or time.time() - p.stat().st_mtime < STALE_UNOWNED_S:
                        continue
            except OSError:
                continue
        elif time.time() - p.stat().st_mtime < STALE_UNOWNED_S:
            continue  # marked but no owner yet: possibly a run that is starting right now
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def _free(path: Path) -> str:
    for p in (path, *path.parents):
        try:
            st = os.statvfs(p)
        except OSError:
            continue
        return f"{st.f_bavail * st.f_frsize / 2**20:.1f} MiB free"
    return "free space unknown"


def _within(inner: str, outer: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def _ours(name, dest: Path, extra: Iterable[Path]) -> bool:
    """Whether ``name`` is on our output side: ``dest``, inside it or one of its parents,
    our temporary siblings of it, or inside ``extra`` (the temporary directory)."""
    if name is None:
        return False
    real, d = os.path.realpath(name), os.path.realpath(dest)
    if _within(d, real) or _within(real, d) or any(_within(real, os.path.realpath(e)) for e in extra):
        return True
    return os.path.dirname(real) == os.path.dirname(d) and os.path.basename(real).startswith(f".{dest.name}.")


def _fault(err: OSError, dest: Path, extra: Iterable[Path]) -> OutputFault | None:
    """The user-facing error for an OSError met while writing ``dest``; None if not ours."""
    if err.errno not in _FAULTS:
        return None
    name = err.filename
    # Reading an input can be refused too: those errors name a path outside the output.
    if err.errno in (errno.EACCES, errno.EPERM) and not _ours(name, dest, extra):
        return None
    # Name the file that failed when it is not the output itself or our temporary copy of it.
    temp = name is not None and os.path.basename(os.fspath(name)).startswith(f".{dest.name}.tmp-")
    where = f" ({name})" if name and not temp and os.path.abspath(name) != os.path.abspath(dest) else ""
    reason = _FAULTS[err.errno]
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        reason += f", {_free(Path(os.path.abspath(dest)).parent)} there"
    return OutputFault(f"{dest}: cannot write the output{where}: {reason}; nothing was written. "
                       + ("Free some space and run again" if err.errno in (errno.ENOSPC, errno.EDQUOT)
                          else "Choose a writable location"))


@contextlib.contextmanager
def output_errors(dest: Path, *extra: Path) -> Iterator[None]:
    """Turn disk-full, quota, read-only and permission errors on ``dest`` into one ``OutputFault``."""
    dest = Path(dest)
    try:
        yield
    except OSError as err:
        fault = _fault(err, dest, extra)
        if fault is None:
            raise
        raise fault from None


def _chmod_umask(path: Path, base: int) -> None:
    os.chmod(path, base & ~current_umask())


@contextlib.contextmanager
def atomic_dir(dest: Path, kind: str, inputs: Iterable[Path | str | None] = ()) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces ``dest``.

    ``dest`` must pass ``pipeline.core.outputs.claim_dir`` (absent, empty, or our output
    of ``kind``; apart from every input) both now and at the final rename. On any
    exception the temporary directory is removed and ``dest`` is left as it was.
    """
    dest = Path(dest)
    inputs = list(inputs)
    claim_dir(dest, kind, inputs)
    clean_stale(dest)
    with output_errors(dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        with output_errors(dest, tmp):
            (tmp / OWNER).write_text(f"{os.getpid()} {_start_time(os.getpid())}".strip())
            _chmod_umask(tmp, 0o777)
            write_marker(tmp, kind)
            yield tmp
            claim_dir(dest, kind, inputs)  # again: nothing may have appeared meanwhile
            (tmp / OWNER).unlink()
            _swap(tmp, dest)
    except BaseException:
        with held_signals():
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap(tmp: Path, dest: Path) -> None:
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except BaseException:
        if old is not None:
            os.replace(old, dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: Path, inputs: Iterable[Path | str | None] = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto ``path``."""
    path = Path(path)
    claim_file(path, inputs)
    with output_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    tmp = Path(name)
    try:
        with output_errors(path, tmp):
            yield tmp
            _chmod_umask(tmp, 0o666)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException:
        with held_signals():
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise


def atomic_write_bytes(path: Path, data: bytes, inputs: Iterable[Path | str | None] = ()) -> None:
    """Write ``data`` to ``path`` all at once: a reader sees the old file or the new one, never half."""
    with atomic_file(path, inputs) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_write_text(path: Path, text: str, inputs: Iterable[Path | str | None] = ()) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), inputs)
