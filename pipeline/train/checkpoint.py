"""Checkpoints: the model artifact, and the per-epoch state a run resumes from.

The model file holds what ``evaluate`` and ``predict`` need (architecture name,
width, weights, classes, input shape, normalisation, and where the first weights came
from): the architecture is rebuilt empty and filled from the file, so a fine-tuned
pretrained model needs neither its package nor a download to predict. The resume state
(``<checkpoint stem>.resume.pt`` beside it) holds everything that changes during
training: weights, optimizer and schedule state, epoch and history, plus a
fingerprint of the params and dataset version, so a run never resumes from a
different configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from pipeline.core.atomic import atomic_file
from pipeline.config import TrainParams
from pipeline.core.errors import InputError

# Params that do not change the result: a run may resume with them changed.
NOT_IN_FINGERPRINT = {"resume", "device", "threads", "log_every", "workers"}


def fingerprint(params: TrainParams, version_digest: str) -> str:
    data = {k: v for k, v in params.recorded().items() if k not in NOT_IN_FINGERPRINT}
    text = json.dumps({"params": data, "version": version_digest}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def resume_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.stem + ".resume.pt")


def save_atomic(obj: dict, path: Path) -> None:
    """Write, fsync, then rename: a run killed mid-write leaves the previous file intact."""
    with atomic_file(Path(path)) as tmp, open(tmp, "wb") as f:
        # A file object, not the temp path: torch.save names the archive's records after a
        # path's file name, and the random temp name would make equal runs differ in bytes.
        torch.save(obj, f)


def save_state(path: Path, state: dict) -> None:
    save_atomic(state, path)


def load_state(path: Path, expected_fingerprint: str) -> dict | None:
    """The resume state at ``path`` if it belongs to this configuration, else None."""
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("fingerprint") != expected_fingerprint:
        print(f"train: {path} is from other params or another dataset version; starting afresh")
        return None
    return state


def checkpoint_task(path: Path) -> str:
    """``classify``, ``detect`` or ``segment``: what a checkpoint's model does. A file that is
    no checkpoint says ``classify``: loading it then gives the clear error."""
    from pipeline.core.inputfile import InputRefused, open_regular

    try:
        fd, _ = open_regular(Path(path))  # a FIFO or device is refused, never waited on
    except InputRefused:
        return "classify"
    try:
        with os.fdopen(fd, "rb") as f:
            ckpt = torch.load(f, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - load_model names the problem
        return "classify"
    task = ckpt.get("task", "classify") if isinstance(ckpt, dict) else "classify"
    return task if task in ("detect", "segment") else "classify"


def load_model(path: Path, device="cpu"):
    """Rebuild the model stored in a checkpoint; returns (model in eval mode, checkpoint dict)."""
    from pipeline.train.models import build_model, known_model

    from pipeline.core.inputfile import InputRefused, open_regular

    try:
        fd, _ = open_regular(Path(path))  # a FIFO or device is refused, never waited on
    except InputRefused as err:
        if err.reason == "missing-file":
            raise InputError(f"{path}: checkpoint not found (run the train stage first)") from None
        raise InputError(f"{path}: cannot read the checkpoint ({err.reason}: {err.detail})") from None
    try:
        with os.fdopen(fd, "rb") as f:
            ckpt = torch.load(f, map_location=device, weights_only=True)
    except Exception as err:  # torch raises many types for a file that is not a checkpoint
        raise InputError(f"{path}: not a pipeline checkpoint ({type(err).__name__})") from None
    if isinstance(ckpt, dict) and ckpt.get("task") in ("detect", "segment"):
        from pipeline.config import TASK_MODELS
        from pipeline.train.detect import load_detector

        if ckpt.get("model") not in TASK_MODELS["detect"]:
            raise InputError(f"{path}: not a pipeline checkpoint (unknown detection model)")
        return load_detector(ckpt, device), ckpt
    if not isinstance(ckpt, dict) or not known_model(ckpt.get("model")):
        raise InputError(f"{path}: not a pipeline checkpoint (unknown model)")
    h, w, c = ckpt["shape"]
    model = build_model(ckpt["model"], c, h, w, len(ckpt["classes"]), seed=0, base=ckpt.get("width"))
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), ckpt
