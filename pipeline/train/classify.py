"""The classification task: one class per image, cross-entropy on (soft) labels.

Its model comes from ``pretrained.initial_model`` (seeded init or trained weights),
its batches are a version's packed rows or files at the model's input size, online
augmentation and mixing draw from per-sample keys of (seed, row id, epoch), and its
validation is loss and accuracy over the val split, reduced across ranks.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from pipeline.core.atomic import atomic_write_text
from pipeline.augment.registry import build_pipeline
from pipeline.config import TrainParams
from pipeline.core.ranks import Ranks
from pipeline.train import board
from pipeline.train.backbone import backbone_norms_eval, freeze_backbone
from pipeline.train.batches import StridedBatches, loader
from pipeline.train.data import InputSize, SplitRows, load_split, normalize, online_keys, read_card, split_ids
from pipeline.train.inputsize import choose_input
from pipeline.train.pretrained import architecture as start_arch, initial_model
from pipeline.train.soft_labels import mix_batch, mixers, soft_targets
from pipeline.train.task import StepOut, autocast


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float  # wall time: printed and logged, never written into a DVC output

    def record(self) -> dict:
        """The epoch as stored in checkpoints: results only, no wall time (equal runs, equal bytes)."""
        return {k: v for k, v in asdict(self).items() if k != "seconds"}


@torch.no_grad()
def predict_split(model: nn.Module, batches, mean, std, device, tta_hflip: bool = False, bf16: bool = True):
    """Softmax probabilities (N, K) over the rows ``batches`` yields (``batches.loader`` over
    ``StridedBatches``: this rank's strided share of a split, all of it in one process)."""
    model.eval()
    mean, std = mean.to(device), std.to(device)
    out, seen = [], []
    for part, _, images, _ in batches:
        x = normalize(images.to(device, non_blocking=True), mean, std)
        with autocast(device, bf16):
            p = model(x).float().softmax(1)
            if tta_hflip:
                p = (p + model(x.flip(3)).float().softmax(1)) / 2
        out.append(p.cpu())
        seen.append(part)
    idx = torch.cat(seen) if seen else torch.empty(0, dtype=torch.int64)
    return idx, torch.cat(out) if out else torch.empty(0, 0)


def split_batches(data: SplitRows, size: InputSize, device, batch_size: int = 1024, world: Ranks = Ranks(),
                  workers: int = 0):
    """The loader of this rank's strided share of a split, in order."""
    return loader(data, size, StridedBatches(len(data), batch_size, world), workers, pin=device.type == "cuda")


def evaluate_split(model, data: SplitRows, batches, mean, std, device, world: Ranks = Ranks(),
                   tta_hflip: bool = False):
    """(mean loss, accuracy, probabilities) over a split, reduced across ranks."""
    idx, probs = predict_split(model, batches, mean, std, device, tta_hflip)
    labels = data.labels[idx]
    if len(idx):
        nll = -probs.clamp_min(1e-12).log().gather(1, labels[:, None]).sum()
        correct = (probs.argmax(1) == labels).sum()
    else:
        nll, correct = torch.tensor(0.0), torch.tensor(0)
    sums = world.all_sum(torch.tensor([float(nll), float(correct), float(len(idx))], dtype=torch.float64))
    n = max(float(sums[2]), 1.0)
    return float(sums[0]) / n, float(sums[1]) / n, probs


class ClassifyTask:
    name = "classify"
    n_sums = 3  # loss sum, correct, count

    def __init__(self, version: Path, params: TrainParams, device: torch.device, world: Ranks):
        self.params, self.device, self.world = params, device, world
        info = self.info = read_card(version)
        self.digest = info.digest
        tr, va = self.tr, self.va = load_split(version, "train"), load_split(version, "val")
        self.n_train = len(tr)
        size = self.size = choose_input(info, params, tr)
        self.mix_pipes = mixers(params.mixup_alpha, params.cutmix_alpha, params.mix_p)
        self.ids = split_ids(version, "train") if (params.online_augment or any(self.mix_pipes)) else []
        self.resized = not (tr.fits(size) and va.fits(size))
        self.k = len(info.classes)
        self.fmt = torch.channels_last if params.channels_last else torch.contiguous_format
        model, init = initial_model(params, size.channels, size.height, size.width, info.classes)
        self.model = model.to(device).to(memory_format=self.fmt)
        self.init, self.pretrained = init, init.pretrained
        # Trained weights expect their own normalisation; a model from scratch gets the version's.
        self.mean = torch.tensor(init.mean or info.mean, device=device)
        self.std = torch.tensor(init.std or info.std, device=device)
        self.pipe = build_pipeline(params.online_augment)
        self.offline_mix = tr.mix_labels is not None and bool((tr.mix_weights != 1.0).any())
        self.val_batches = split_batches(va, size, device, world=world, workers=params.workers)

    def describe(self, device, threads: int, world_size: int, run: str) -> str:
        s, init, p = self.size, self.init, self.params
        h, w, c = s.height, s.width, s.channels
        line = (f"train: {p.model} on {len(self.tr)} train / {len(self.va)} val images {h}x{w}x{c}, {self.k} classes, "
                f"device {device}, {threads} threads, {world_size} process(es), run {run}")
        resized = f"; images resized to {h}x{w} ({s.chosen}, {s.resize[0]})" if self.resized else ""
        start = ""
        if init.pretrained:
            start = (f"\ntrain: starting from {init.source}"
                     + (f" (trained at {init.input_size[0]}x{init.input_size[1]}; this version is {h}x{w})"
                        if init.input_size and init.input_size != (h, w) else ""))
        return line, resized, start

    def log_graph(self, writer) -> None:
        if len(self.tr):
            board.log_graph(writer, self.model, normalize(self.tr.read([0], self.size).to(self.device), self.mean, self.std))

    def train_batches(self, sampler):
        return loader(self.tr, self.size, sampler, self.params.workers, pin=self.device.type == "cuda")

    def head_parameters(self) -> set[str] | None:
        return None  # the last nn.Linear's (optim's default)

    def set_frozen(self, frozen: bool) -> None:
        freeze_backbone(self.model, frozen)

    def norms_eval(self) -> None:
        backbone_norms_eval(self.model)

    def step(self, net: nn.Module, batch, epoch: int, step: int) -> StepOut:
        p, device = self.params, self.device
        idx, global_len, images, y = batch
        images, y = images.to(device, non_blocking=True), y.to(device, non_blocking=True)
        keys = online_keys(self.ids, idx, p.seed, epoch, device) if self.ids else None
        if self.pipe.ops:
            images = self.pipe.apply(images, self.pipe.sample(keys, self.size.height, self.size.width))
        x = normalize(images, self.mean, self.std)
        if self.offline_mix:  # soft labels of the version's mixup/cutmix rows
            target = soft_targets(y, self.k, p.label_smoothing, self.tr.mix_labels[idx].to(device),
                                  self.tr.mix_weights[idx].to(device))
        else:
            target = soft_targets(y, self.k, p.label_smoothing)
        if keys is not None:
            x, target = mix_batch(x, target, y, keys, self.mix_pipes)
        # Train accuracy counts against the dominant class of the (possibly mixed) target.
        y = target.argmax(1)
        x = x.contiguous(memory_format=self.fmt)
        with autocast(device, p.bf16):
            logits = net(x)
        losses = nn.functional.cross_entropy(logits.float(), target, reduction="none")
        # Sum over this shard / global batch size, times the world size that DDP
        # divides by: the gradient is exactly the global batch mean on any world size.
        loss = losses.sum() * (self.world.size / global_len)
        with torch.no_grad():
            right = logits.argmax(1) == y
            sums = torch.stack([losses.detach().sum().double(), right.sum().double(),
                                torch.tensor(float(len(idx)), dtype=torch.float64, device=device)])
        return StepOut(loss, sums,
                       lambda: {"step/loss": float(losses.detach().mean()), "step/accuracy": float(right.float().mean())},
                       lambda: board.image_grid(x[:64], self.mean, self.std))

    def epoch(self, epoch: int, sums: torch.Tensor, lr: float, seconds: float) -> EpochStats:
        val_loss, val_acc, _ = evaluate_split(self.model, self.va, self.val_batches, self.mean.cpu(), self.std.cpu(),
                                              self.device, world=self.world)
        return EpochStats(epoch, float(sums[0] / sums[2]), float(sums[1] / sums[2]), val_loss, val_acc, lr, seconds)

    def epoch_scalars(self, stats: EpochStats) -> list[tuple[str, float]]:
        return [("loss/train", stats.train_loss), ("loss/val", stats.val_loss),
                ("accuracy/train", stats.train_acc), ("accuracy/val", stats.val_acc),
                ("lr", stats.lr), ("time/epoch_seconds", stats.seconds)]

    def log_images(self, writer, step: int) -> None:
        pass  # the first batch (StepOut.picture) is the classifier's picture

    def epoch_line(self, stats: EpochStats) -> str:
        return (f"epoch {stats.epoch}: train loss {stats.train_loss:.4f} acc {stats.train_acc:.4f} | "
                f"val loss {stats.val_loss:.4f} acc {stats.val_acc:.4f} | "
                f"{len(self.tr) / stats.seconds:.0f} img/s")

    def restore_history(self, records: list[dict]) -> list[EpochStats]:
        return [EpochStats(**{"seconds": 0.0, **e}) for e in records]

    def final(self, history: list[EpochStats]) -> tuple[dict, dict]:
        """(metrics file, HParams metrics) of the finished run."""
        last = history[-1]
        final = {"val_accuracy": round(last.val_acc, 6), "val_loss": round(last.val_loss, 6),
                 "train_accuracy": round(last.train_acc, 6), "train_loss": round(last.train_loss, 6),
                 "epochs": len(history)}
        return final, {k: final[k] for k in ("val_accuracy", "val_loss", "train_accuracy")}

    def checkpoint(self, run: str, history: list[EpochStats]) -> dict:
        s, init, info, p = self.size, self.init, self.info, self.params
        # No "task" key: a checkpoint without one is a classifier (the bytes of a
        # classification checkpoint are what they were before tasks existed).
        return {
            "model": start_arch(p), "width": p.width, "state_dict": self.model.state_dict(),
            # The input size and the resize that brings any image to it (predict, evaluate).
            "classes": list(info.classes), "shape": [s.height, s.width, s.channels], "resize": list(s.resize),
            "resized": self.resized,
            "mean": list(init.mean or info.mean), "std": list(init.std or info.std), "pretrained": init.source,
            "params": p.recorded(), "run": run,
            "history": [e.record() for e in history],
        }

    def write_metrics(self, final: dict, history: list[EpochStats], metrics: Path, curve: Path) -> None:
        write_metrics(final, history, metrics, curve)


def write_metrics(final: dict, history: list[EpochStats], metrics: Path, curve: Path) -> None:
    atomic_write_text(metrics, json.dumps(final, indent=1) + "\n")
    f = io.StringIO(newline="")
    out = csv.writer(f)
    out.writerow(["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr"])
    for s in history:
        out.writerow([s.epoch, f"{s.train_loss:.6f}", f"{s.val_loss:.6f}", f"{s.train_acc:.6f}",
                      f"{s.val_acc:.6f}", f"{s.lr:.8f}"])
    atomic_write_text(curve, f.getvalue())
