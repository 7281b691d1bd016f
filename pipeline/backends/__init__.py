"""Backends other than the engine's own, registered with it on import.

``albumentations``: the op list mapped onto albumentations transforms and run per
sample on the CPU (``albumentations_backend``), over worker processes for big
image-only batches (``albumentations_pool``); its ``albumentations.<Transform>`` ops
can sit in any pipeline. ``resolve`` decides ``auto`` (``choice``). Whoever builds a
pipeline from params or a card and renders it imports this package, so every name
the params allow is known; the engine (``pipeline.augment``) never imports it.
"""

from __future__ import annotations

import json
from typing import Any

import torch

from pipeline.augment.backend import AUTO, TORCH, Backend, get_backend, register_backend
from pipeline.augment.pipeline import Pipeline, check_targets
from pipeline.augment.registry import register_external
from pipeline.augment.targets import Targets
from pipeline.backends.albumentations_backend import (PREFIX, check_supported, compose, external_op,
                                                      run_per_sample, seeds_of, to_albumentations)
from pipeline.backends.choice import choose_backend


class AlbumentationsBackend:
    """``backend: albumentations``: the whole op list per sample on the CPU, each sample
    seeded from its key (its parameters are albumentations' own draws)."""

    name = "albumentations"

    def __init__(self):
        self._composes: dict[tuple, Any] = {}  # by what they do: the ops' parameters, size, targets

    def check(self, ops) -> None:
        check_supported(ops)

    def seeds(self, keys: torch.Tensor) -> list[int]:
        return seeds_of(keys.cpu())

    def run(self, pipe: Pipeline, images: torch.Tensor, targets: Targets | None, keys: torch.Tensor,
            drawn, partners=None):
        if targets is not None:
            check_targets(pipe.ops, targets.kinds())
        b, c, h, w = images.shape
        key = (tuple(json.dumps(op.params.model_dump(mode="json"), sort_keys=True) for op in pipe.ops),
               h, w, c, targets is not None)
        if key not in self._composes:
            self._composes[key] = compose([to_albumentations(op, h, w, c) for op in pipe.ops], targets is not None)
        if not pipe.ops:
            return images.clone(), targets
        workers = torch.get_num_threads()
        if images.dtype == torch.uint8 and targets is None and workers > 1 and b >= 2 * workers \
                and images.device.type == "cpu":
            # threads lose to the GIL here (albumentations is Python between OpenCV calls)
            from pipeline.backends.albumentations_pool import run_in_processes

            arr = run_in_processes(pipe.ops, seeds_of(keys), images.permute(0, 2, 3, 1).numpy(), workers)
            return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous(), None
        if images.dtype == torch.uint8:
            out, moved = run_per_sample(self._composes[key], keys, images, targets, 255.0)
            return out.contiguous(), moved
        out, moved = run_per_sample(self._composes[key], keys, images * 255.0, targets, 255.0)
        return out / 255.0, moved


ALBUMENTATIONS = AlbumentationsBackend()
register_backend(ALBUMENTATIONS)
register_external(PREFIX, external_op)


def resolve(pipe: Pipeline, device, h: int, w: int) -> str:
    """The backend ``pipe`` runs on for (h, w) images on ``device``: its own name, or for
    ``auto`` the faster correct one (``choice``). Record it with the output."""
    if pipe.backend != AUTO:
        return pipe.backend
    return choose_backend(pipe.ops, torch.device(device), h, w)


def backend_of(pipe: Pipeline) -> Backend:
    """The backend a pipeline with a resolved name runs on."""
    return get_backend(pipe.backend)


__all__ = ["ALBUMENTATIONS", "TORCH", "AlbumentationsBackend", "backend_of", "resolve"]
