"""What a training task supplies to the one training loop (``pipeline.train.loop``).

The loop owns what every task shares: the optimizer and schedule, the epoch order
and its sharding across ranks, DDP, freezing the backbone for the first epochs,
resume from the epoch checkpoint, TensorBoard and the final checkpoint. A task owns
what differs (the split as torchvision reference scripts and Lightning modules split
it): its model, the loss of one batch, validation, and what its epoch records and
checkpoint hold. ``classify`` (``pipeline.train.classify``) and ``detect`` /
``segment`` (``pipeline.train.detect``) are the two implementations; the loop picks one.

Which task a run is comes from ``train.task``; ``auto`` follows the version: samples
with objects are detection data, image labels classification data.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import nn

from pipeline.config import DEFAULT_MODEL, TrainParams, model_task
from pipeline.core.errors import ConfigError


def autocast(device: torch.device, bf16: bool):
    if device.type == "cuda" and bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class StepOut:
    """One training batch: the loss to back-propagate (already scaled so the gradient is
    the global batch mean on any world size), the sums this batch adds to the epoch's
    (a float64 tensor on the device, summed across ranks at the epoch's end), and what
    TensorBoard shows per step, computed only on the steps that log."""

    loss: torch.Tensor
    sums: torch.Tensor
    scalars: Callable[[], dict[str, float]]
    picture: Callable[[], torch.Tensor | None] = lambda: None  # the first batch as the model saw it


class Task(Protocol):
    name: str  # classify | detect | segment
    model: nn.Module  # the bare model (the loop wraps it in DDP)
    pretrained: bool  # it starts from trained weights: freeze_epochs and backbone_lr apply
    digest: str  # the version's card: with the params, the resume fingerprint
    n_train: int
    n_sums: int  # length of ``StepOut.sums``

    def describe(self, device, threads: int, world_size: int, run: str) -> tuple[str, str, str]: ...
    def log_graph(self, writer) -> None: ...
    def train_batches(self, sampler): ...
    def head_parameters(self) -> set[str] | None: ...  # trained at train.lr, the rest at backbone_lr
    def set_frozen(self, frozen: bool) -> None: ...
    def norms_eval(self) -> None: ...
    def step(self, net: nn.Module, batch: Any, epoch: int, step: int) -> StepOut: ...
    def epoch(self, epoch: int, sums: torch.Tensor, lr: float, seconds: float): ...
    def epoch_scalars(self, stats) -> list[tuple[str, float]]: ...
    def log_images(self, writer, step: int) -> None: ...
    def epoch_line(self, stats) -> str: ...
    def restore_history(self, records: list[dict]) -> list: ...
    def final(self, history: list) -> tuple[dict, dict]: ...
    def checkpoint(self, run: str, history: list) -> dict: ...
    def write_metrics(self, final: dict, history: list, metrics: Path, curve: Path) -> None: ...


def version_kind(version: Path) -> str:
    """``detection`` | ``classification``: what the version's card says its samples are."""
    from pipeline.train.data import read_card

    read_card(version)  # a missing or incomplete card is the clear error it gives
    from pipeline.version.dataset import read_card as read_version_card

    return read_version_card(version).kind


def has_polygons(version: Path) -> bool:
    from pipeline.datasets import load_dataset

    return any(o.polygons for s in load_dataset(Path(version)).samples for o in s.objects)


def resolve_task(params: TrainParams, version: Path) -> str:
    """The task this run trains, from ``train.task`` and the version; a combination that
    cannot train is a ConfigError naming the keys, before any model is built."""
    kind = version_kind(version)
    task = params.task
    if task == "auto":
        task = "detect" if kind == "detection" else "classify"
    if task in ("detect", "segment") and kind != "detection":
        raise ConfigError(f"train.task {params.task}: {version} has image labels only (no sample has objects); "
                          "detection and segmentation need boxes or polygons; use train.task classify or auto")
    if task == "segment" and not has_polygons(version):
        raise ConfigError(f"train.task segment: no object of {version} has a polygon (boxes only); "
                          "segmentation needs polygons (labelme, COCO, CVAT); use train.task detect")
    if task == "classify" and kind == "detection":
        raise ConfigError(f"train.task {params.task}: {version} is detection data (its samples have objects, "
                          "not one class label each); use train.task detect (or auto)")
    if model_task(params.model) != ("classify" if task == "classify" else "detect") or (
            task == "segment" and params.model != DEFAULT_MODEL["segment"]):
        raise ConfigError(f"train.model {params.model} cannot do train.task {task}"
                          + (f" (train.task auto chose it from {version})" if params.task == "auto" else "")
                          + (f"; set train.model: {DEFAULT_MODEL[task]}" if task in DEFAULT_MODEL else
                             "; set a classification model (resnet_small, efficientnet_lite0, ...)"))
    return task
