"""``augment.backend: auto``: the fastest correct backend for a device and image size.

Measured by ``benchmarks/augment.py`` (docs/benchmarks.md): on CUDA the batched
torch backend wins by far. On the CPU the torch backend (batch split over threads)
beat the in-process albumentations backend at 32x32 (~5x) and at 224x224 (~2.5x)
on the 2-core development machine, so ``auto`` picks torch up to
``CPU_TORCH_MAX_PIXELS`` and albumentations above it, where per-sample OpenCV
kernels would eventually win. Pipelines using ops albumentations lacks (mixup,
cutmix, mosaic) always run on torch.
"""

from __future__ import annotations

import torch

# Largest image area (pixels) at which batched torch is known to beat the
# per-sample albumentations backend on the CPU (measured up to 224x224).
CPU_TORCH_MAX_PIXELS = 256 * 256


def choose_backend(ops, device: torch.device, h: int, w: int) -> str:
    from pipeline.augment.albumentations_backend import UNSUPPORTED

    if device.type != "cpu" or any(op.name in UNSUPPORTED for op in ops):
        return "torch"
    return "torch" if h * w <= CPU_TORCH_MAX_PIXELS else "albumentations"
