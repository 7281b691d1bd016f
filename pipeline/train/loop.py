"""The train stage: fit a model on a dataset version, log to TensorBoard, checkpoint.

Determinism: weights are initialised from a generator seeded by ``train.seed``;
each epoch's order comes from a generator keyed by (seed, epoch); online
augmentation and mixing draw from per-sample keys of (seed, row id, epoch). No
global RNG is touched, so a run is a function of the data and params, and a run
resumed from its epoch checkpoint ends with the same weights as one never stopped.

The same function runs under ``torchrun``: each rank takes its shard of every
global batch, gradients are averaged by DistributedDataParallel, metrics are
summed across ranks and only rank 0 logs and writes files.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from pipeline.atomic import atomic_write_text
from pipeline.augment.registry import build_pipeline
from pipeline.config import TrainParams
from pipeline.errors import ConfigError
from pipeline.outputs import check_apart, check_dir_target, claim_file
from pipeline.device import resolve_device, set_threads
from pipeline.progress import progress
from pipeline.ranks import Ranks, join
from pipeline.train import board, checkpoint as ckpt_io
from pipeline.train.batches import EpochBatches, StridedBatches, loader
from pipeline.train.data import InputSize, SplitRows, VersionInfo, load_split, normalize, online_keys, read_card, split_ids
from pipeline.train.inputsize import choose_input
from pipeline.train.soft_labels import mix_batch, mixers, soft_targets
from pipeline.train.backbone import backbone_norms_eval, freeze_backbone
from pipeline.train.pretrained import architecture as start_arch, initial_model
from pipeline.train.optim import make_optimizer, make_schedule


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


def autocast(device: torch.device, bf16: bool):
    if device.type == "cuda" and bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


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


def train(version: Path, params: TrainParams, checkpoint: Path, logdir: Path,
          metrics: Path, curve: Path) -> list[EpochStats]:
    """Train on ``version``; write the checkpoint, TensorBoard logs, metrics and curve."""
    import os

    threads = set_threads(params.threads)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if params.threads == 0 and local_world > 1:  # share the cores between this node's ranks
        threads = set_threads(max(1, threads // local_world))
    for path, what in ((checkpoint, "checkpoint"), (metrics, "metrics file"), (curve, "curve CSV")):
        claim_file(path, [version], what)  # never inside the version it reads
    check_apart(logdir, [version], "the log directory", cwd=False)
    check_dir_target(logdir, "the log directory")
    device = resolve_device(params.device)
    world = join(device.type)  # the torchrun world: gloo on CPU, NCCL on CUDA (a GPU per local rank)
    if device.type == "cuda" and world.distributed:
        device = torch.device("cuda", world.local_rank)
    try:
        return _train(version, params, checkpoint, logdir, metrics, curve, world, device, threads)
    finally:
        world.close()


def _train(version, params: TrainParams, checkpoint: Path, logdir: Path, metrics: Path, curve: Path,
           world: Ranks, device: torch.device, threads: int) -> list[EpochStats]:
    from torch.utils.tensorboard import SummaryWriter

    info: VersionInfo = read_card(version)
    tr, va = load_split(version, "train"), load_split(version, "val")
    size = choose_input(info, params, tr)
    mix_pipes = mixers(params.mixup_alpha, params.cutmix_alpha, params.mix_p)
    ids = split_ids(version, "train") if (params.online_augment or any(mix_pipes)) else []
    h, w, c = size.height, size.width, size.channels
    resized = not (tr.fits(size) and va.fits(size))
    k = len(info.classes)
    fmt = torch.channels_last if params.channels_last else torch.contiguous_format
    model, init = initial_model(params, c, h, w, info.classes)
    model = model.to(device).to(memory_format=fmt)
    # Trained weights expect their own normalisation; a model from scratch gets the version's.
    mean = torch.tensor(init.mean or info.mean, device=device)
    std = torch.tensor(init.std or info.std, device=device)
    opt = make_optimizer(params, model, params.backbone_lr if init.pretrained else None)
    steps_per_epoch = -(-len(tr) // params.batch_size)
    sched = make_schedule(params, opt, steps_per_epoch)
    pipe = build_pipeline(params.online_augment)

    fp = ckpt_io.fingerprint(params, info.digest)
    state_path = ckpt_io.resume_path(checkpoint)
    history: list[EpochStats] = []
    state = ckpt_io.load_state(state_path, fp) if params.resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["schedule"])
        history = [EpochStats(**{"seconds": 0.0, **e}) for e in state["history"]]
    first_epoch = len(history) + 1
    step = (first_epoch - 1) * steps_per_epoch

    def wrap(model):  # DDP reduces the parameters that take gradients when it is built
        if not world.distributed:
            return model
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    name = board.run_name(params.model, fp)
    writer = None
    if world.main:
        (logdir / name).mkdir(parents=True, exist_ok=True)
        # purge_step drops what a killed run logged after its last checkpoint.
        writer = SummaryWriter(str(logdir / name), purge_step=step if state else None)
        print(f"train: {params.model} on {len(tr)} train / {len(va)} val images {h}x{w}x{c}, {k} classes, "
              f"device {device}, {threads} threads, {world.size} process(es), run {name}"
              + (f", resumed after epoch {first_epoch - 1}" if state else "")
              + (f"; images resized to {h}x{w} ({size.chosen}, {size.resize[0]})" if resized else ""))
        if init.pretrained:
            print(f"train: starting from {init.source}"
                  + (f" (trained at {init.input_size[0]}x{init.input_size[1]}; this version is {h}x{w})"
                     if init.input_size and init.input_size != (h, w) else ""))
        if state is None and len(tr):
            board.log_graph(writer, model, normalize(tr.read([0], size).to(device), mean, std))

    # Batches are read per step (packed rows or decoded files), never the whole split:
    # memory does not grow with the version.
    sampler = EpochBatches(len(tr), params.batch_size, params.seed, world)
    train_batches = loader(tr, size, sampler, params.workers, pin=device.type == "cuda")
    val_batches = split_batches(va, size, device, world=world, workers=params.workers)
    offline_mix = tr.mix_labels is not None and bool((tr.mix_weights != 1.0).any())
    net, frozen = wrap(model), False
    for epoch in range(first_epoch, params.epochs + 1):
        t0 = time.perf_counter()
        # Trained weights: the first freeze_epochs train the new head only, then everything.
        if init.pretrained and frozen != (epoch <= params.freeze_epochs):
            frozen = epoch <= params.freeze_epochs
            freeze_backbone(model, frozen)
            net = wrap(model)
        net.train()
        if frozen:
            backbone_norms_eval(model)
        sampler.set_epoch(epoch)
        sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
        batches = train_batches
        if world.main:
            batches = progress(batches, desc=f"epoch {epoch}/{params.epochs}", total=steps_per_epoch,
                               unit="batch")
        for idx, global_len, images, y in batches:
            images, y = images.to(device, non_blocking=True), y.to(device, non_blocking=True)
            keys = online_keys(ids, idx, params.seed, epoch, device) if ids else None
            if pipe.ops:
                images = pipe.apply(images, pipe.sample(keys, h, w))
            x = normalize(images, mean, std)
            if offline_mix:  # soft labels of the version's mixup/cutmix rows
                target = soft_targets(y, k, params.label_smoothing, tr.mix_labels[idx].to(device),
                                      tr.mix_weights[idx].to(device))
            else:
                target = soft_targets(y, k, params.label_smoothing)
            if keys is not None:
                x, target = mix_batch(x, target, y, keys, mix_pipes)
            # Train accuracy counts against the dominant class of the (possibly mixed) target.
            y = target.argmax(1)
            x = x.contiguous(memory_format=fmt)
            with autocast(device, params.bf16):
                logits = net(x)
            losses = nn.functional.cross_entropy(logits.float(), target, reduction="none")
            # Sum over this shard / global batch size, times the world size that DDP
            # divides by: the gradient is exactly the global batch mean on any world size.
            loss = losses.sum() * (world.size / global_len)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if params.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip)
            lr = opt.param_groups[0]["lr"]
            opt.step()
            sched.step()
            step += 1
            with torch.no_grad():
                sums += torch.stack([losses.detach().sum().double(), (logits.argmax(1) == y).sum().double(),
                                     torch.tensor(float(len(idx)), dtype=torch.float64, device=device)])
            if writer is not None and (step % params.log_every == 0 or step == 1):
                writer.add_scalar("step/loss", float(losses.detach().mean()), step)
                writer.add_scalar("step/accuracy", float((logits.argmax(1) == y).float().mean()), step)
                writer.add_scalar("step/lr", lr, step)
                if step == 1:
                    writer.add_image("train/batch_as_seen_by_model", board.image_grid(x[:64], mean, std), step)
        sums = world.all_sum(sums).cpu()
        val_loss, val_acc, _ = evaluate_split(model, va, val_batches, mean.cpu(), std.cpu(), device, world=world)
        stats = EpochStats(epoch, float(sums[0] / sums[2]), float(sums[1] / sums[2]), val_loss, val_acc,
                           lr, time.perf_counter() - t0)
        if not math.isfinite(stats.train_loss):  # the same reduced value on every rank
            raise ConfigError(f"train: the loss became {stats.train_loss} in epoch {epoch}: training diverged; "
                              f"lower train.lr (now {params.lr}) or set train.grad_clip")
        history.append(stats)
        if world.main:
            for tag, value in (("loss/train", stats.train_loss), ("loss/val", stats.val_loss),
                               ("accuracy/train", stats.train_acc), ("accuracy/val", stats.val_acc),
                               ("lr", stats.lr), ("time/epoch_seconds", stats.seconds)):
                writer.add_scalar(tag, value, step)
            writer.flush()
            print(f"epoch {epoch}: train loss {stats.train_loss:.4f} acc {stats.train_acc:.4f} | "
                  f"val loss {stats.val_loss:.4f} acc {stats.val_acc:.4f} | "
                  f"{len(tr) / stats.seconds:.0f} img/s")
            ckpt_io.save_state(state_path, {
                "fingerprint": fp, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "schedule": sched.state_dict(), "history": [s.record() for s in history],
            })
        world.barrier()

    if world.main:
        last = history[-1]
        final = {"val_accuracy": round(last.val_acc, 6), "val_loss": round(last.val_loss, 6),
                 "train_accuracy": round(last.train_acc, 6), "train_loss": round(last.train_loss, 6),
                 "epochs": len(history)}
        writer.close()
        ckpt_io.save_atomic({
            "model": start_arch(params), "width": params.width, "state_dict": model.state_dict(),
            # The input size and the resize that brings any image to it (predict, evaluate).
            "classes": list(info.classes), "shape": [h, w, c], "resize": list(size.resize), "resized": resized,
            "mean": list(init.mean or info.mean), "std": list(init.std or info.std), "pretrained": init.source,
            "params": params.model_dump(mode="json"), "run": name,
            "history": [s.record() for s in history],
        }, checkpoint)
        write_metrics(final, history, metrics, curve)
        state_path.unlink(missing_ok=True)  # finished: nothing to resume
    world.barrier()
    return history


def write_metrics(final: dict, history: list[EpochStats], metrics: Path, curve: Path) -> None:
    atomic_write_text(metrics, json.dumps(final, indent=1) + "\n")
    f = io.StringIO(newline="")
    out = csv.writer(f)
    out.writerow(["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr"])
    for s in history:
        out.writerow([s.epoch, f"{s.train_loss:.6f}", f"{s.val_loss:.6f}", f"{s.train_acc:.6f}",
                      f"{s.val_acc:.6f}", f"{s.lr:.8f}"])
    atomic_write_text(curve, f.getvalue())
