"""Interrupts at the entry points (CLI, stage runner): one line, the usual exit code.

Ctrl-C (SIGINT) raises ``KeyboardInterrupt`` as Python always does; SIGTERM (sent
by ``kill``, ``timeout``, a scheduler) is made to raise ``Terminated``, a
``KeyboardInterrupt``, so the same cleanup runs for both: worker pools are stopped
(``pipeline.workers``) and temporary outputs removed (``pipeline.atomic``). The
entry point then prints ``interrupted`` and exits 130 (SIGINT) or 143 (SIGTERM),
without a traceback.
"""

from __future__ import annotations

import signal
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def install() -> None:
    """Make SIGTERM raise ``Terminated`` (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def exit_code(err: KeyboardInterrupt) -> int:
    return 128 + (signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT)
