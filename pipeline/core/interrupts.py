"""Interrupts at the entry points (CLI, stage runner): one line, the usual exit code.

Ctrl-C (SIGINT) raises ``KeyboardInterrupt`` as Python always does; SIGTERM (sent
by ``kill``, ``timeout``, a scheduler) is made to raise ``Terminated``, a
``KeyboardInterrupt``, so the same cleanup runs for both: worker pools are stopped
(``pipeline.core.workers``) and temporary outputs removed (``pipeline.core.atomic``). The
entry point then prints ``interrupted`` and exits 130 (SIGINT) or 143 (SIGTERM),
without a traceback.

``held_signals`` holds both back for a few statements that must not be cut in
half: removing a temporary directory, and starting worker processes (a
KeyboardInterrupt raised during ``fork`` comes out of an at-fork hook, where
Python prints and *drops* it, so the run would go on as if nothing happened).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

SIGNALS = {signal.SIGINT, signal.SIGTERM}


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


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back; each one that arrived is raised again when the block ends.

    The handlers are swapped for one that only takes note (the signal mask would not
    do: Python runs handlers in the main thread whichever thread the kernel picked,
    and another thread, such as tqdm's monitor, may receive it). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: got.append(signum)) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        for s in dict.fromkeys(got):
            signal.raise_signal(s)
