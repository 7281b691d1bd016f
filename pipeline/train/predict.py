"""``pipeline predict``: class and probability for user images.

Images are read by the guarded reader (``pipeline.core.inputfile.read_bytes``: a FIFO,
device or dangling link is a clear error, never a hang) and go through the ingest
image policy (``pipeline.images.imageread.load_checked``: format sniffed from bytes,
first frame of a multi-page file, EXIF orientation applied, any mode to L or RGB), then
are brought to the checkpoint's channels and input size by the resize its training rows
went through (``pipeline.train.data.fit_image``: ``train.image_size``, ``resize`` and
``pad_value`` as the checkpoint records them), and normalised with the training
split's statistics stored in the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.core.errors import InputError


@dataclass(frozen=True)
class Prediction:
    path: Path
    label: str
    probability: float
    top: tuple[tuple[str, float], ...]  # the best classes, most likely first
    notes: tuple[str, ...] = ()  # what the image policy changed, e.g. "first-frame-of:3"


def load_image(path: Path):
    """``(PIL image in L or RGB, ImageInfo)`` for one file; InputError for anything that is
    not an image, with the reason ingest would quarantine it for."""
    from pipeline.config import IngestParams
    from pipeline.images.imageread import ImageRejected, read_checked

    try:
        _, img, _, info = read_checked(Path(path), min_size=1, max_pixels=IngestParams().max_pixels)
    except ImageRejected as err:
        raise InputError(f"{path}: cannot be read as an image ({err.reason}: {err.detail})") from None
    return img, info


@dataclass(frozen=True)
class Inputs:
    """What ``image_files`` found: the files to predict, and the other files it passed over."""

    images: tuple[Path, ...]
    skipped: tuple[Path, ...] = ()  # in folders: files without an image extension


def image_files(paths: list[Path]) -> Inputs:
    """The files to predict: each file as given; for a folder every image file under it,
    recursively (by extension, as ingest finds them), sorted, hidden files and folders
    skipped; its other files are listed as skipped. A folder without any image is an
    InputError."""
    from pipeline.ingest.tree import IMAGE_EXTS, walk

    out: list[Path] = []
    skipped: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            out.append(path)  # a file, or whatever it is: the guarded reader names the problem
            continue
        files = walk(path).files
        found = sorted(f for f in files if f.suffix.lower() in IMAGE_EXTS)
        if not found:
            raise InputError(f"{path}: no image files in this folder ({', '.join(sorted(IMAGE_EXTS))})")
        out += found
        skipped += sorted(f for f in files if f.suffix.lower() not in IMAGE_EXTS)
    return Inputs(tuple(out), tuple(skipped))


def predict(checkpoint: Path, paths: list[Path], top: int = 3, device: str = "cpu") -> list[Prediction | InputError]:
    """One Prediction per readable image, the InputError for each that is not (in input order)."""
    from pipeline.train import data
    from pipeline.train.checkpoint import load_model

    model, ckpt = load_model(checkpoint, device)
    size = data.checkpoint_input(ckpt)
    classes = ckpt["classes"]
    mean, std = torch.tensor(ckpt["mean"]), torch.tensor(ckpt["std"])
    out: list[Prediction | InputError] = []
    for path in paths:
        try:
            img, info = load_image(path)
        except InputError as err:
            out.append(err)
            continue
        with img:
            x = data.fit_image(img, size)
        with torch.no_grad():
            probs = model(data.normalize(x[None], mean, std).to(device)).float().softmax(1)[0].cpu()
        p, i = probs.topk(min(top, len(classes)))
        best = tuple((classes[j], round(float(q), 6)) for q, j in zip(p.tolist(), i.tolist()))
        out.append(Prediction(Path(path), best[0][0], best[0][1], best, info.notes))
    return out
