"""``device: auto|cpu|cuda`` resolved once, the same way everywhere."""

from __future__ import annotations

import os

from pipeline.core.errors import ConfigError


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was requested but no CUDA device is available; use device: auto")
    return torch.device(name)


def cpu_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def set_threads(threads: int = 0) -> int:
    """Size torch's CPU thread pool to the machine (or ``threads``)."""
    import torch

    n = threads or cpu_cores()
    torch.set_num_threads(n)
    return n


def configure_process(torch_threads: int | None = None) -> None:
    """Process-wide settings, made once at an entry point (the stage runner, a CLI
    command, the trainer), never inside library calls.

    glibc keeps freed buffers (``pipeline.core.allocator``); for commands that use torch its
    CPU thread pool gets ``torch_threads`` (0 = one per core). Commands that transform
    batches (augment, preview, trace) pass 1: the engine then splits each batch over
    the cores itself (``Pipeline.transform``), one single-threaded chunk per core.
    """
    from pipeline.core.allocator import retain_freed_memory

    retain_freed_memory()
    if torch_threads is not None:
        set_threads(torch_threads)
    if torch_threads == 1:
        import cv2

        # OpenCV's kernels (the warp's remap, blur, tables) run inside the engine's
        # per-core chunk threads too: its own pool on top would oversubscribe the cores.
        cv2.setNumThreads(1)
