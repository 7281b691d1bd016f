"""Worker processes that never outlive their run.

Pools (ingest's decoders, the albumentations backend) start their workers with
``worker_init``, which

* ignores SIGINT (workers are started under ``interrupts.held_signals``, so none
  is hit half-way through its start): Ctrl-C reaches the whole process group, and the parent alone
  decides what happens (it stops the workers itself, see ``stop_pool``); a worker
  dying on its own KeyboardInterrupt leaves the pool's bookkeeping half-done
  (``InvalidStateError: CANCELLED`` and a hang in ``ProcessPoolExecutor``);
* asks Linux to SIGKILL it when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so
  ``kill -9`` of the run leaves no worker behind;
* starts a watchdog thread that exits the worker when its parent is gone, where
  ``prctl`` is not available (or the parent died before the call).

``stop_pool`` is the one way a pool is stopped when the run fails or is
interrupted: SIGKILL the workers first (they hold nothing worth saving: the parent
writes every output), then let the executor notice and shut down without waiting
for queued work, and without cancelling futures (a cancel racing the executor's
own cleanup is what raised ``InvalidStateError`` in Python 3.11).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
WATCHDOG_S = 0.5


def _set_pdeathsig() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watchdog below still covers it


def _watch(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(WATCHDOG_S)


def worker_init(parent: int) -> None:
    """Call first in every worker process; ``parent`` is the pid of the process that started it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker inherits the parent's handler
    _set_pdeathsig()
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="parent-watchdog", daemon=True).start()


def stop_pool(pool) -> None:
    """Stop a ``ProcessPoolExecutor`` at once: kill its workers, then shut it down."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            proc.kill()
        except (OSError, ValueError, AttributeError):
            pass
    pool.shutdown(wait=True, cancel_futures=False)
