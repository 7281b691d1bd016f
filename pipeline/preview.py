"""``pipeline augment --preview``: look at the augmentations before training on them.

Outside DVC, in seconds: N samples of a canonical dataset go through each op alone
(its probability forced to 1, so it always shows) and through the full pipeline
(as copy 1 of the real version would), and each result is written to TensorBoard
as a before | after panel with the boxes and polygons drawn and named, and the
drawn parameters in the caption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import AugmentParams
from pipeline.record import Dataset, Sample, load_dataset

PANEL = 256  # the longer side of each half of a panel, in screen pixels
SUFFIX = ".preview"  # event files this command owns (and replaces on the next run)
PALETTE = [(255, 80, 80), (80, 220, 80), (90, 160, 255), (255, 200, 40), (230, 90, 230), (40, 220, 220)]


@dataclass(frozen=True)
class PreviewResult:
    logdir: Path
    samples: int
    images: int


def pick(dataset: Dataset, n: int) -> list[Sample]:
    """``n`` samples spread evenly over the id order (deterministic)."""
    ordered = sorted(dataset.samples, key=lambda s: s.id)
    if n >= len(ordered):
        return ordered
    return [ordered[(i * len(ordered)) // n] for i in range(n)]


def tensorboard_command(logdir: Path, port: int = 6006) -> str:
    return f"tensorboard --logdir {logdir} --host 127.0.0.1 --port {port}"


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def draw(pixels: np.ndarray, objects: list[dict], scale: int, classes: tuple[str, ...]):
    """uint8 (H, W, C) -> enlarged RGB PIL image with boxes, polygons and class names."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).convert("RGB")
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    pen = ImageDraw.Draw(img)
    font = _font(13)
    for o in objects:
        colour = PALETTE[classes.index(o["label"]) % len(PALETTE)] if o["label"] in classes else PALETTE[0]
        for poly in o.get("polygons", []):
            pts = [(x * scale, y * scale) for x, y in zip(poly[0::2], poly[1::2])]
            pen.polygon(pts, outline=colour, width=2)
        x1, y1, x2, y2 = (v * scale for v in o["box"])
        if o.get("visible", True):
            pen.rectangle((x1, y1, x2, y2), outline=colour, width=1)
            pen.text((x1 + 2, max(y1 - 15, 0)), o["label"], fill=colour, font=font, stroke_width=2,
                     stroke_fill=(0, 0, 0))
    return img


def panel(before, after, caption: list[str]) -> np.ndarray:
    """Before | after side by side under a caption; uint8 (H, W, 3)."""
    from PIL import Image, ImageDraw

    font = _font(14)
    gap, line = 12, 18
    top = line * len(caption) + 8
    out = Image.new("RGB", (before.width + gap + after.width, top + max(before.height, after.height)), (24, 24, 24))
    pen = ImageDraw.Draw(out)
    for i, text in enumerate(caption):
        pen.text((4, 4 + i * line), text, fill=(235, 235, 235), font=font)
    out.paste(before, (0, top))
    out.paste(after, (before.width + gap, top))
    return np.asarray(out)


def _params_text(describe: list[dict]) -> list[str]:
    return [op["op"] + ": " + ", ".join(f"{k}={v}" for k, v in op.items() if k != "op") for op in describe]


def _label_text(s: Sample, moved, classes) -> str:
    """The caption's label: hard, soft (``0.63·cat + 0.37·dog``) when mixed, or an object count."""
    from pipeline.trace import soft_label_text
    from pipeline.version.targets import mix_of

    if s.label is None:
        return f"{len(s.objects)} object(s)"
    label, mix_label, weight = mix_of(moved, 0)
    return s.label if weight == 1.0 else soft_label_text(classes[label], classes[mix_label], weight)


def preview(source: Path, params: AugmentParams, n: int, logdir: Path) -> PreviewResult:
    """Write the preview of ``n`` samples of the canonical dataset ``source`` into ``logdir``."""
    import torch
    from torch.utils.tensorboard import SummaryWriter

    from pipeline.augment.pipeline import Pipeline
    from pipeline.augment.registry import build_pipeline
    from pipeline.augment.rng import keys_tensor
    from pipeline.seeding import sample_key
    from pipeline.version.decode import decode
    from pipeline.version.targets import partner_batch, row_objects, sample_targets

    dataset = load_dataset(source)
    full = build_pipeline(params.pipeline)
    # Each op alone, always applied, so its effect is visible on every sample.
    alone = [(f"op{j + 1}_{spec['name']}", build_pipeline([{**spec, "p": 1.0}]))
             for j, spec in enumerate(params.pipeline)]
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    for old in logdir.glob(f"events.out.tfevents.*{SUFFIX}"):
        old.unlink()
    writer = SummaryWriter(log_dir=str(logdir), filename_suffix=SUFFIX)
    images = 0
    samples = pick(dataset, n)
    pool = sorted(dataset.samples, key=lambda s: s.id)  # mixing partners: as in a version, by key
    for k, s in enumerate(samples):
        h, w = params.image_size or (s.height, s.width)
        c = params.channels or s.channels
        dec = decode(dataset.read_image(s), h, w, c)

        def decode_many(wanted, h=h, w=w, c=c):
            return {p.id: decode(dataset.read_image(p), h, w, c) for p in wanted}

        img = torch.from_numpy(dec.pixels)[None]
        resized = sample_targets([s], [dec.size], h, w, dataset.classes)
        scale = max(1, math.ceil(PANEL / max(h, w)))
        before = draw(dec.pixels.transpose(1, 2, 0), row_objects(resized, 0, s, dataset.classes)[0], scale,
                      dataset.classes)
        keys = keys_tensor([sample_key(params.seed, s.id, 1)])
        for tag, pipe in [("full_pipeline", full)] + alone:
            drawn = pipe.sample(keys, h, w)
            moved, partner_ids = resized, [[]]
            if pipe.ops:
                parts, partner_ids = partner_batch(pipe, drawn, pool, decode_many, h, w, dataset.classes, "cpu")
                out_t, moved = pipe.transform(img, resized, drawn, parts)
                out = out_t[0].permute(1, 2, 0).contiguous().numpy()
            else:
                out = dec.pixels.transpose(1, 2, 0)
            objects, _ = row_objects(moved, 0, s, dataset.classes, resized, 0, (partner_ids or [[]])[0])
            after = draw(out, objects, scale, dataset.classes)
            caption = [f"{s.id}  label: {_label_text(s, moved, dataset.classes)}  "
                       f"({tag}, seed {params.seed}, copy 1)"]
            if partner_ids and partner_ids[0]:
                caption.append("mixed with " + ", ".join(partner_ids[0]))
            caption += _params_text(Pipeline.describe(pipe.ops, drawn, 0)) or ["(no ops)"]
            name = f"{tag}/{k:02d}_{s.id.replace('/', '_')}"
            writer.add_image(name, panel(before, after, caption), 0, dataformats="HWC")
            writer.add_text(name, "  \n".join(caption), 0)
            images += 1
    writer.close()
    return PreviewResult(logdir, len(samples), images)
