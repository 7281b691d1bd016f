"""Keep freed large buffers in the process (glibc). The CPU augmentation path
allocates and frees several MiB-sized float tensors per chunk and op, and ingest
one decoded image plus its pixel copy per file; with glibc's
defaults each comes fresh from ``mmap`` (or the heap top is trimmed back to the OS)
and is page-faulted in again on first touch. Measured on the 2-core VM, one thread,
the 224x224 benchmark pipeline: 71 ms CPU time per 32 images by default, 39-43 ms
with the thresholds below (the kernel's page zeroing was ~40% of the work).
Ingest of 500x375 JPEGs: the pixel copy for the hash fell from ~0.9 ms to ~0.15 ms.

This is process-wide: freed memory up to ``TRIM`` per malloc arena stays mapped
instead of going back to the OS (peak RSS is unchanged; the resident size after a
peak may stay higher). A user who set ``MALLOC_MMAP_THRESHOLD_`` or
``MALLOC_TRIM_THRESHOLD_`` keeps their setting; non-glibc platforms are left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

MMAP = 32 << 20  # allocations below this come from the heap, not fresh mmaps
TRIM = 128 << 20  # free heap top kept up to this before returning it to the OS
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
_state: dict[str, bool] = {}


def retain_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds once per process; True when set."""
    if "set" in _state:
        return _state["set"]
    _state["set"] = False
    if not sys.platform.startswith("linux") or {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _state["set"] = mallopt(_M_MMAP_THRESHOLD, MMAP) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM) == 1
    return _state["set"]
