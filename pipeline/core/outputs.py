"""Ownership of outputs: a command replaces only what it wrote itself.

Every directory a command writes carries ``MARKER`` (``.pipeline-output.json``:
the tool and the output kind, fixed bytes so DVC hashes stay equal). Before a
command does any work it checks each output path against three rules:

* an existing ``--out`` may be replaced only if it is empty or holds our marker of
  the same kind; anything else (a user's folder, another tool's output, a file, a
  link) is refused with a summary of what is there;
* an output never equals, contains or lies inside one of the command's inputs, nor
  the current directory, whatever the spelling: paths are compared after
  ``realpath`` (``.``, ``..``, links, relative or absolute all resolve alike);
* a single-file output (metrics, CSV, checkpoint) is never a directory and never
  lies inside an input;
* a directory written into and kept between runs (TensorBoard logs, the download
  cache) is a directory or absent: a file, FIFO or device in its place is refused
  before any work, not stumbled on when the first file goes in.

The checks raise ``OutputRefused`` (a ``PipelineError``: exit 2, one line). They
run again just before the final rename (``pipeline.core.atomic``), so a folder that
appears meanwhile is not swept away either.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from pipeline.core.errors import PipelineError

MARKER = ".pipeline-output.json"
TOOL = "pipeline"
KINDS = ("download", "canonical", "splits", "version", "export")
_SHOWN = 3  # entries named in a refusal
_COUNTED = 10_000  # entries counted at most (an unrelated home directory can be huge)


class OutputRefused(PipelineError):
    """An output path cannot be written without destroying or reading back something."""


def marker_bytes(kind: str) -> bytes:
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    return (json.dumps({"kind": kind, "tool": TOOL}, sort_keys=True) + "\n").encode()


def write_marker(directory: Path, kind: str) -> None:
    (Path(directory) / MARKER).write_bytes(marker_bytes(kind))


def marker_kind(directory: Path) -> str | None:
    """The kind recorded in ``directory``'s marker; None when there is no valid marker."""
    path = Path(directory) / MARKER
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > 4096:
            return None
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("tool") != TOOL or doc.get("kind") not in KINDS:
        return None
    return doc["kind"]


def _shown(path: Path) -> str:
    """The path as typed, plus where it really is when that differs."""
    real = os.path.realpath(path)
    return str(path) if str(path) == real else f"{path} (= {real})"


def _within(inner: str, outer: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def check_apart(out: Path, inputs: Iterable[Path | str | None], what: str = "--out", cwd: bool = True) -> None:
    """Refuse an output that is, contains or lies inside an input (or contains the current directory)."""
    real = os.path.realpath(out)
    for inp in inputs:
        if inp is None:
            continue
        r_in = os.path.realpath(inp)
        if real == r_in:
            raise OutputRefused(f"{_shown(out)}: {what} is the input {inp} itself; writing it would "
                                "destroy the input. Choose another output directory")
        if _within(real, r_in):
            raise OutputRefused(f"{_shown(out)}: {what} lies inside the input {inp}; the input would be "
                                "changed (and read back on the next run). Choose a path outside it")
        if _within(r_in, real):
            raise OutputRefused(f"{_shown(out)}: {what} contains the input {inp}; replacing it would "
                                "delete the input. Choose a path outside it")
    if cwd and _within(os.path.realpath(os.getcwd()), real):
        raise OutputRefused(f"{_shown(out)}: {what} is (or contains) the current directory; "
                            "give a new or empty directory elsewhere")


def summarize(directory: Path) -> str:
    """``3 files and 1 folder, e.g. a.txt, notes/`` for a refusal message."""
    files = folders = 0
    names: list[str] = []
    with os.scandir(directory) as it:
        for entry in it:
            if files + folders >= _COUNTED:
                return f"more than {_COUNTED:,} entries, e.g. {', '.join(sorted(names)[:_SHOWN])}"
            is_dir = entry.is_dir(follow_symlinks=False)
            folders += is_dir
            files += not is_dir
            names.append(entry.name + ("/" if is_dir else ""))
    parts = [f"{n} {word}{'s' if n != 1 else ''}" for n, word in ((files, "file"), (folders, "folder")) if n]
    return f"{' and '.join(parts)}, e.g. {', '.join(sorted(names)[:_SHOWN])}"


def check_replaceable(out: Path, kind: str) -> None:
    """Refuse an existing ``out`` unless it is an empty directory or our output of ``kind``."""
    out = Path(out)
    if out.is_symlink():
        raise OutputRefused(f"{_shown(out)}: is a symbolic link; it is left as it is. "
                            "Give the directory itself, or a new path")
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputRefused(f"{_shown(out)}: exists and is not a directory; it is left as it is. "
                            "Remove it or choose another output path")
    try:
        with os.scandir(out) as it:
            empty = next(it, None) is None
    except OSError as err:
        raise OutputRefused(f"{_shown(out)}: cannot be read to check what it holds ({err.strerror})") from None
    if empty:
        return
    found = marker_kind(out)
    if found == kind:
        return
    if found is not None:
        raise OutputRefused(f"{_shown(out)}: holds a pipeline output of kind {found}, not {kind}; "
                            "refusing to replace it. "
                            "Choose another output directory")
    raise OutputRefused(f"{_shown(out)}: holds {summarize(out)}, not written by pipeline; refusing to replace it. "
                        "Choose a new or empty directory, or remove it yourself")


def claim_dir(out: Path, kind: str, inputs: Iterable[Path | str | None] = ()) -> None:
    """All checks for a directory output of ``kind``; raises ``OutputRefused``."""
    if str(out) == "":
        raise OutputRefused("the output directory is an empty path")
    check_apart(Path(out), inputs)
    check_replaceable(Path(out), kind)


def claim_file(path: Path, inputs: Iterable[Path | str | None] = (), what: str = "output file") -> None:
    """Checks for a single-file output: not a directory, not inside an input."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise OutputRefused(f"{path}: is a directory, expected a file path for the {what}; it is left as it is")
    if path.exists() and not path.is_file():
        raise OutputRefused(f"{path}: exists and is not a regular file; it is left as it is")
    check_apart(path, inputs, what)


def check_dir_target(path: Path, what: str) -> None:
    """A directory the command writes files into and keeps (``--logdir``, the download
    cache): absent (it is created) or a directory; anything else is refused."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise OutputRefused(f"{_shown(path)}: exists and is not a directory; it is left as it is. "
                            f"Give a directory (or a new path) for {what}")
