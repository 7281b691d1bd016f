"""``augment.backend: auto``: the fastest correct backend for a device and image size.

On CUDA the batched torch backend wins by far. On the CPU the choice follows a
small table of throughputs measured on the 2-core development machine with the
benchmark pipeline (``benchmarks/augment.py``'s ops; torch: batch split over the
torch threads; albumentations: our albumentations backend, per sample over as many
worker processes). Between the measured sizes the log of the speed ratio is
interpolated linearly in the log of the pixel count, and beyond them extrapolated from
the nearest segment. Measured from 32x32 to 640x640, torch is the faster of the two at
every size (5.3x at 32x32, 1.3-1.5x from 224x224 up), so ``auto`` picks torch; the
table stays so that a measurement where albumentations wins would be followed; its
sizes span the images people augment, because extrapolating from two sizes once picked
the slower backend above 590x590. Pipelines using ops albumentations lacks (mixup,
cutmix, mosaic) always run on torch.
"""

from __future__ import annotations

import math

import torch

from pipeline.backends.albumentations_backend import UNSUPPORTED

# (pixels per image, torch img/s, albumentations backend img/s), 2 cores, batch 512 at
# 32x32, 64 at 224x224, 32 at 448x448, 16 at 640x640, measured 2026-12-07 18:25 UTC on the
# quiet 2-core AMD EPYC (docs/benchmarks.md, "Exact uint8 augmentation on a quiet machine").
CPU_MEASURED = (
    (32 * 32, 34616.0, 6508.0),
    (224 * 224, 1729.0, 1346.0),
    (448 * 448, 536.0, 418.0),
    (640 * 640, 272.0, 186.0),
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
