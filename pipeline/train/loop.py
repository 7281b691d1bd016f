"""The train stage: fit a model on a dataset version, log to TensorBoard, checkpoint.

Determinism: weights are initialised from a generator seeded by ``train.seed``
and each epoch's shuffle comes from a generator seeded by (seed, epoch); no global
RNG is touched, so a run is a function of the data and params.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pipeline.config import TrainParams
from pipeline.device import resolve_device, set_threads
from pipeline.progress import progress
from pipeline.seeding import key64
from pipeline.train.data import SplitTensors, VersionInfo, load_split, normalize, read_card
from pipeline.train.models import build_model


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float


def make_optimizer(params: TrainParams, model: nn.Module) -> torch.optim.Optimizer:
    if params.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=params.lr, momentum=params.momentum,
                               weight_decay=params.weight_decay, nesterov=params.momentum > 0)
    cls = torch.optim.AdamW if params.optimizer == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)


def make_schedule(params: TrainParams, opt: torch.optim.Optimizer, steps: int):
    if params.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=params.lr, total_steps=steps)
    if params.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


@torch.no_grad()
def evaluate_split(model: nn.Module, data: SplitTensors, mean, std, device, batch_size: int = 1024):
    """(mean loss, accuracy, predictions) over a split."""
    model.eval()
    loss_sum, preds = 0.0, []
    for start in range(0, len(data), batch_size):
        x = normalize(data.images[start:start + batch_size], mean, std).to(device)
        y = data.labels[start:start + batch_size].to(device)
        logits = model(x)
        loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        preds.append(logits.argmax(1).cpu())
    pred = torch.cat(preds) if preds else torch.empty(0, dtype=torch.int64)
    n = max(len(data), 1)
    return loss_sum / n, float((pred == data.labels).float().sum()) / n, pred


def train(version: Path, params: TrainParams, checkpoint: Path, logdir: Path,
          metrics: Path, curve: Path) -> list[EpochStats]:
    """Train on ``version``; write the checkpoint, TensorBoard logs, metrics and curve."""
    from torch.utils.tensorboard import SummaryWriter

    threads = set_threads(params.threads)
    device = resolve_device(params.device)
    info: VersionInfo = read_card(version)
    tr, va = load_split(version, "train"), load_split(version, "val")
    h, w, c = info.shape
    model = build_model(params.model, c, h, w, len(info.classes), params.seed)
    model = model.to(device).to(memory_format=torch.channels_last)
    mean, std = torch.tensor(info.mean), torch.tensor(info.std)
    opt = make_optimizer(params, model)
    steps_per_epoch = -(-len(tr) // params.batch_size)
    sched = make_schedule(params, opt, params.epochs * steps_per_epoch)
    logdir.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(str(logdir))
    history: list[EpochStats] = []
    print(f"train: {params.model} on {len(tr)} train / {len(va)} val images {h}x{w}x{c}, "
          f"{len(info.classes)} classes, device {device}, {threads} threads")
    for epoch in range(1, params.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        g = torch.Generator().manual_seed(key64("shuffle", params.seed, epoch) & 0x7FFFFFFFFFFFFFFF)
        order = torch.randperm(len(tr), generator=g)
        loss_sum, correct, lr = 0.0, 0, opt.param_groups[0]["lr"]
        for start in progress(range(0, len(tr), params.batch_size), desc=f"epoch {epoch}/{params.epochs}",
                              total=steps_per_epoch, unit="batch"):
            idx = order[start:start + params.batch_size]
            x = normalize(tr.images[idx], mean, std).to(device, non_blocking=True)
            y = tr.labels[idx].to(device, non_blocking=True)
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            lr = opt.param_groups[0]["lr"]
            sched.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        val_loss, val_acc, _ = evaluate_split(model, va, mean, std, device)
        stats = EpochStats(epoch, loss_sum / len(tr), correct / len(tr), val_loss, val_acc, lr,
                           time.perf_counter() - t0)
        history.append(stats)
        for tag, value in (("loss/train", stats.train_loss), ("loss/val", stats.val_loss),
                           ("accuracy/train", stats.train_acc), ("accuracy/val", stats.val_acc),
                           ("lr", stats.lr)):
            writer.add_scalar(tag, value, epoch)
        print(f"epoch {epoch}: train loss {stats.train_loss:.4f} acc {stats.train_acc:.4f} | "
              f"val loss {stats.val_loss:.4f} acc {stats.val_acc:.4f} | {len(tr) / stats.seconds:.0f} img/s")
    writer.close()
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save({
        "model": params.model, "state_dict": model.state_dict(), "classes": list(info.classes),
        "shape": list(info.shape), "mean": list(info.mean), "std": list(info.std),
        "params": params.model_dump(mode="json"),
    }, checkpoint)
    last = history[-1]
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(json.dumps({"val_accuracy": round(last.val_acc, 6), "val_loss": round(last.val_loss, 6),
                                   "train_accuracy": round(last.train_acc, 6), "epochs": len(history)},
                                  indent=1) + "\n")
    curve.parent.mkdir(parents=True, exist_ok=True)
    with open(curve, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr"])
        for s in history:
            out.writerow([s.epoch, f"{s.train_loss:.6f}", f"{s.val_loss:.6f}", f"{s.train_acc:.6f}",
                          f"{s.val_acc:.6f}", f"{s.lr:.8f}"])
    return history
