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

import math
import time
from pathlib import Path

import torch
from torch import nn

from pipeline.config import TrainParams
from pipeline.core.errors import ConfigError
from pipeline.core.outputs import check_apart, check_dir_target, claim_file
from pipeline.core.device import resolve_device, set_threads
from pipeline.core.progress import progress
from pipeline.core.ranks import Ranks, join
from pipeline.train import board, checkpoint as ckpt_io
from pipeline.train.batches import EpochBatches
# The classification task's pieces, imported from here by evaluate, predict and tests.
from pipeline.train.classify import EpochStats, evaluate_split, predict_split, split_batches, write_metrics  # noqa: F401
from pipeline.train.optim import make_optimizer, make_schedule
from pipeline.train.task import Task, autocast, resolve_task  # noqa: F401


def make_task(params: TrainParams, version: Path, device: torch.device, world: Ranks) -> Task:
    """The task ``train.task`` and the version ask for, its model built."""
    task = resolve_task(params, version)
    if task == "classify":
        from pipeline.train.classify import ClassifyTask

        return ClassifyTask(version, params, device, world)
    from pipeline.train.detect import DetectTask

    return DetectTask(version, params, device, world, masks=task == "segment")


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
           world: Ranks, device: torch.device, threads: int) -> list:
    from torch.utils.tensorboard import SummaryWriter

    task = make_task(params, version, device, world)
    model = task.model
    opt = make_optimizer(params, model, params.backbone_lr if task.pretrained else None, task.head_parameters())
    steps_per_epoch = -(-task.n_train // params.batch_size)
    sched = make_schedule(params, opt, steps_per_epoch)

    fp = ckpt_io.fingerprint(params, task.digest)
    state_path = ckpt_io.resume_path(checkpoint)
    history: list = []
    state = ckpt_io.load_state(state_path, fp) if params.resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["schedule"])
        history = task.restore_history(state["history"])
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
        line, resized, start = task.describe(device, threads, world.size, name)
        print(line + (f", resumed after epoch {first_epoch - 1}" if state else "") + resized + start)
        if state is None:
            task.log_graph(writer)

    # Batches are read per step (packed rows or decoded files), never the whole split:
    # memory does not grow with the version.
    sampler = EpochBatches(task.n_train, params.batch_size, params.seed, world)
    train_batches = task.train_batches(sampler)
    net, frozen = wrap(model), False
    for epoch in range(first_epoch, params.epochs + 1):
        t0 = time.perf_counter()
        # Trained weights: the first freeze_epochs train the new head only, then everything.
        if task.pretrained and frozen != (epoch <= params.freeze_epochs):
            frozen = epoch <= params.freeze_epochs
            task.set_frozen(frozen)
            net = wrap(model)
        net.train()
        if frozen:
            task.norms_eval()
        sampler.set_epoch(epoch)
        sums = torch.zeros(task.n_sums, dtype=torch.float64, device=device)
        batches = train_batches
        if world.main:
            batches = progress(batches, desc=f"epoch {epoch}/{params.epochs}", total=steps_per_epoch,
                               unit="batch")
        for batch in batches:
            out = task.step(net, batch, epoch, step + 1)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            if params.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip)
            lr = opt.param_groups[0]["lr"]
            opt.step()
            sched.step()
            step += 1
            sums += out.sums
            if writer is not None and (step % params.log_every == 0 or step == 1):
                for tag, value in out.scalars().items():
                    writer.add_scalar(tag, value, step)
                writer.add_scalar("step/lr", lr, step)
                if step == 1 and (picture := out.picture()) is not None:
                    writer.add_image("train/batch_as_seen_by_model", picture, step)
        sums = world.all_sum(sums).cpu()
        stats = task.epoch(epoch, sums, lr, time.perf_counter() - t0)
        if not math.isfinite(stats.train_loss):  # the same reduced value on every rank
            raise ConfigError(f"train: the loss became {stats.train_loss} in epoch {epoch}: training diverged; "
                              f"lower train.lr (now {params.lr}) or set train.grad_clip")
        history.append(stats)
        if world.main:
            for tag, value in task.epoch_scalars(stats):
                writer.add_scalar(tag, value, step)
            task.log_images(writer, step)
            writer.flush()
            print(task.epoch_line(stats))
            ckpt_io.save_state(state_path, {
                "fingerprint": fp, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "schedule": sched.state_dict(), "history": [s.record() for s in history],
            })
        world.barrier()

    if world.main:
        # The run's HParams trial is written by evaluate (train and test metrics in one row).
        final, _ = task.final(history)
        writer.close()
        ckpt_io.save_atomic(task.checkpoint(name, history), checkpoint)
        task.write_metrics(final, history, metrics, curve)
        state_path.unlink(missing_ok=True)  # finished: nothing to resume
    world.barrier()
    return history
