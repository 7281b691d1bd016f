"""``augment.backend: auto``: the fastest correct backend for a device and image size.

On CUDA the batched torch backend wins by far. On the CPU the choice follows a
small table of throughputs measured on the 2-core development machine with the
benchmark pipeline (``benchmarks/augment.py``'s ops; torch: batch split over the
torch threads; albumentations: per sample over as many worker processes). Between
and beyond the measured sizes the log of the speed ratio is interpolated linearly
in the log of the pixel count (it falls steadily with image size: torch's fixed
per-pixel float passes against OpenCV's uint8 kernels), so ``auto`` picks torch up
to the extrapolated crossover (~590x590 px) and albumentations above it. Pipelines using ops
albumentations lacks (mixup, cutmix, mosaic) always run on torch.
"""

from __future__ import annotations

import math

import torch

from pipeline.backends.albumentations_backend import UNSUPPORTED

# (pixels per image, torch img/s, albumentations img/s), 2 cores, batch 512 at 32x32
# and 64 at 224x224, measured 2026-11-22 01:30 UTC (docs/benchmarks.md, "Augmentation engine").
CPU_MEASURED = (
    (32 * 32, 15414.0, 2651.0),
    (224 * 224, 994.0, 556.0),
)


def cpu_speed_ratio(pixels: int, table=CPU_MEASURED) -> float:
    """Estimated torch / albumentations throughput on the CPU at ``pixels`` per image."""
    pts = sorted((math.log(p), math.log(t / a)) for p, t, a in table)
    x = math.log(max(pixels, 1))
    if len(pts) == 1:
        return math.exp(pts[0][1])
    # the segment containing x, or the nearest end segment (linear extrapolation)
    i = next((k for k in range(len(pts) - 1) if x <= pts[k + 1][0]), len(pts) - 2)
    (x0, y0), (x1, y1) = pts[i], pts[i + 1]
    return math.exp(y0 + (y1 - y0) * (x - x0) / (x1 - x0))


def choose_backend(ops, device: torch.device, h: int, w: int, table=CPU_MEASURED) -> str:
    """"torch" or "albumentations": the faster correct one per ``table`` (CPU)."""
    if device.type != "cpu" or any(op.name in UNSUPPORTED for op in ops):
        return "torch"
    return "torch" if cpu_speed_ratio(h * w, table) >= 1.0 else "albumentations"
