"""Whether a path is a stage output that the repository's ``dvc.lock`` tracks.

A command may write onto a directory that ``dvc repro`` produced (``pipeline ingest
myimages --out`` the ingest stage's output): the tool wrote it, so replacing it is allowed
(``pipeline.core.outputs``), but the workspace then holds something other than what
``dvc.lock`` records, and a plain ``dvc checkout`` keeps it (only ``--force``
brings the tracked output back). The command says so in one line.

Cheap on purpose: one YAML read of ``dvc.lock``, no DVC import. The lock looked at
is the one in the current directory and the nearest one above the output; its
``outs`` paths are relative to the lock's directory (stages with a ``wdir`` are not
resolved). Under ``dvc repro`` (DVC sets ``DVC_STAGE`` for a stage's command) the
stage is writing its own output and nothing is said.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

LOCK = "dvc.lock"
LOCK_MAX_BYTES = 64 * 2**20  # a lock of many foreach stages is a few MiB; larger is not a lock file


@dataclass(frozen=True)
class TrackedOutput:
    """The stage output ``path`` (relative to ``lock``'s directory) of ``stage``."""

    path: str
    stage: str
    lock: Path

    @property
    def shown(self) -> str:
        """The output's path as the user can type it from here."""
        return os.path.relpath(self.lock.parent / self.path)

    @property
    def restore(self) -> str:
        """The command that brings the tracked output back, runnable from here (DVC takes
        paths relative to the current directory, which must lie inside the repository)."""
        repo = os.path.realpath(self.lock.parent)
        if _within(os.path.realpath(os.getcwd()), repo):
            return f"dvc checkout --force {shlex.quote(self.shown)}"
        return f"cd {shlex.quote(str(self.lock.parent))} && dvc checkout --force {shlex.quote(self.path)}"


def _within(inner: str, outer: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def _locks(out: Path) -> list[Path]:
    """``dvc.lock`` of the current directory, then the nearest one above ``out``."""
    found = [Path(os.getcwd()) / LOCK]
    for parent in Path(os.path.realpath(out)).parents:
        if (parent / LOCK).is_file():
            found.append(parent / LOCK)
            break
    unique: dict[str, Path] = {}
    for lock in found:
        if lock.is_file():
            unique.setdefault(os.path.realpath(lock), lock)
    return list(unique.values())


def stage_outs(lock: Path) -> list[tuple[str, str]]:
    """``(stage, out path)`` of every output ``lock`` records; [] when it cannot be read."""
    from pipeline.core.inputfile import InputRefused, parse_yaml, read_bytes

    try:
        doc = parse_yaml(read_bytes(lock, "config", LOCK_MAX_BYTES))
    except (InputRefused, OSError):
        return []
    stages = doc.get("stages") if isinstance(doc, dict) else None
    if not isinstance(stages, dict):
        return []
    return [(str(name), out["path"]) for name, stage in stages.items() if isinstance(stage, dict)
            for out in stage.get("outs") or () if isinstance(out, dict) and isinstance(out.get("path"), str)]


def tracked_output(out: Path) -> TrackedOutput | None:
    """The tracked stage output that ``out`` is or lies inside; None when it is neither,
    or when DVC itself is running the stage."""
    if os.environ.get("DVC_STAGE"):
        return None
    real = os.path.realpath(out)
    for lock in _locks(out):
        for stage, path in stage_outs(lock):
            if _within(real, os.path.realpath(lock.parent / path)):
                return TrackedOutput(path, stage, lock)
    return None


def replaced_notice(out: Path, tracked: TrackedOutput) -> str:
    """The line a command prints after writing ``out`` onto ``tracked``."""
    inside = os.path.realpath(out) != os.path.realpath(tracked.lock.parent / tracked.path)
    what = "wrote inside" if inside else "replaced"
    return (f"note: {what} the pipeline's tracked output {tracked.shown} (stage {tracked.stage}, "
            f"{os.path.relpath(tracked.lock)}); `{tracked.restore}` restores it")
