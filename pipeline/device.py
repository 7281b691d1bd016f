"""``device: auto|cpu|cuda`` resolved once, the same way everywhere."""

from __future__ import annotations

import os

from pipeline.errors import ConfigError


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was requested but no CUDA device is available; use device: auto")
    return torch.device(name)


def set_threads(threads: int = 0) -> int:
    """Size torch's CPU thread pool to the machine (or ``threads``)."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = threads or cores
    torch.set_num_threads(n)
    return n
