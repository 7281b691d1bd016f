"""Worker processes that never outlive their run, and the pool that runs them.

``OrderedPool`` runs a function over chunks of work in worker processes and
yields the results in chunk order (ingest's decoders, the albumentations
backend). It is small on purpose: every worker has its own pipe and holds at most
one chunk, the parent alone reads and writes the pipes, and there is no helper
thread. ``concurrent.futures.ProcessPoolExecutor`` was used before, and stopping it
on Ctrl-C could hang: a cancel racing its manager thread raised
``InvalidStateError: CANCELLED``, and a worker killed while it wrote a result left
the manager thread blocked on half a message, so ``shutdown`` never returned. Here
``kill`` SIGKILLs the workers and closes the pipes: nothing can wait on them.

Every worker first runs ``worker_init``, which

* ignores SIGINT: Ctrl-C reaches the whole process group and the parent alone
  decides (it kills the workers); workers are started under
  ``interrupts.held_signals``, so none is hit half-way through its start;
* asks Linux to SIGKILL it when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so
  ``kill -9`` of the run leaves no worker behind;
* starts a watchdog thread that exits the worker when its parent is gone, where
  ``prctl`` is not available (or the parent died before the call).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import wait
from typing import Any, Callable, Iterable, Iterator

from pipeline.core.errors import PipelineError
from pipeline.core.interrupts import held_signals

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


class WorkerDied(PipelineError):
    """A worker process ended without answering (killed, often for lack of memory)."""


def _serve(conn, fn: Callable, initializer: Callable | None, initargs: tuple, parent: int) -> None:
    """A worker: take a chunk, answer ``(True, fn(chunk))`` or ``(False, error, traceback)``."""
    worker_init(parent)
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        try:
            answer: tuple = (True, fn(chunk))
        except Exception as err:  # handed to the parent, which raises it
            answer = (False, err, traceback.format_exc())
        try:
            conn.send(answer)
        except Exception:  # the error itself cannot be pickled
            conn.send((False, RuntimeError(repr(answer[1])), traceback.format_exc()))


class OrderedPool:
    """``fn`` over chunks in ``workers`` processes; ``map`` yields results in chunk order.

    Stop it with ``close`` (normal end) or ``kill`` (error, interrupt); use it as a
    context manager to get ``kill`` on any exception."""

    def __init__(self, fn: Callable, workers: int, initializer: Callable | None = None,
                 initargs: tuple = (), context: str | None = None):
        ctx = multiprocessing.get_context(context)
        self._procs: list = []
        self._conns: list = []
        with held_signals():  # a KeyboardInterrupt inside fork's hooks would be dropped
            try:
                for _ in range(workers):
                    mine, theirs = ctx.Pipe()
                    proc = ctx.Process(target=_serve, args=(theirs, fn, initializer, initargs, os.getpid()),
                                       daemon=True, name="pipeline-worker")
                    proc.start()
                    theirs.close()
                    self._procs.append(proc)
                    self._conns.append(mine)
            except BaseException:
                self.kill()
                raise

    def __enter__(self) -> "OrderedPool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.kill()

    def map(self, chunks: Iterable[Any]) -> Iterator[Any]:
        todo = enumerate(chunks)
        busy: dict = {}  # connection -> index of the chunk it holds
        done: dict[int, Any] = {}
        sentinels = {p.sentinel: p for p in self._procs}

        def give(conn) -> None:
            item = next(todo, None)
            if item is not None:
                busy[conn] = item[0]
                try:
                    conn.send(item[1])
                except OSError:
                    pass  # the worker is gone: its sentinel says so next

        for conn in self._conns:
            give(conn)
        want = 0
        while busy or want in done:
            if want in done:
                yield done.pop(want)
                want += 1
                continue
            for ready in wait([*busy, *sentinels]):
                if ready in sentinels:
                    code = sentinels[ready].exitcode
                    how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                    raise WorkerDied(f"a worker process ended unexpectedly ({how}; a kill for lack of memory "
                                     "looks like this): lower the number of workers")
                try:
                    answer = ready.recv()
                except (EOFError, OSError):
                    continue  # its sentinel says why
                index = busy.pop(ready)
                if not answer[0]:
                    raise answer[1] from RuntimeError("in the worker:\n" + answer[2])
                done[index] = answer[1]
                give(ready)

    def close(self) -> None:
        """Let the workers finish and exit."""
        for conn in self._conns:
            try:
                conn.send(None)
            except OSError:
                pass
        for proc in self._procs:
            proc.join(10)
        self.kill()

    def kill(self) -> None:
        """SIGKILL every worker now and close the pipes; never waits on a worker's cooperation."""
        for proc in self._procs:
            if proc.exitcode is None:
                try:
                    proc.kill()
                except (OSError, AttributeError):
                    pass
        for proc in self._procs:
            proc.join(5)
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []
