"""``augment.backend: auto``: the fastest correct backend for a device and image size.

Measured by ``benchmarks/augment.py`` (docs/benchmarks.md): on CUDA the batched
torch backend wins by far; on the CPU the batched torch backend wins on small
images, while per-sample OpenCV (albumentations) wins on large ones, where its
SIMD kernels beat float32 tensor passes. Pipelines using ops albumentations lacks
(mixup, cutmix, mosaic) always run on torch.
"""

from __future__ import annotations

import torch

# Largest image area (pixels) at which batched torch beats per-sample albumentations
# on the CPU, from the benchmark: wins at 32x32, loses at 224x224.
CPU_TORCH_MAX_PIXELS = 96 * 96


def choose_backend(ops, device: torch.device, h: int, w: int) -> str:
    from pipeline.augment.albumentations_backend import UNSUPPORTED

    if device.type != "cpu" or any(op.name in UNSUPPORTED for op in ops):
        return "torch"
    return "torch" if h * w <= CPU_TORCH_MAX_PIXELS else "albumentations"
