"""``pipeline augment --preview``: look at the augmentations before training on them.

Outside DVC, in seconds: N train samples of a canonical dataset go through each op
alone (its probability forced to 1, so it always shows) and through the full
pipeline, and each result is written to TensorBoard as a before | after panel with
the boxes and polygons drawn and named, and the drawn parameters in the caption.
The full pipeline's panels are rendered by the version writer's own render path
(``pipeline.version.render``) with the same split, keys, partners, rules and
backend, so they show exactly what copy 1 of those samples holds in the version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import AugmentParams
from pipeline.core.errors import InputError
from pipeline.record import Dataset, Sample
from pipeline.version.manifest import RowObject

PANEL = 256  # the longer side of each half of a panel, in screen pixels
SUFFIX = ".preview"  # event files this command owns (and replaces on the next run)
PALETTE = [(255, 80, 80), (80, 220, 80), (90, 160, 255), (255, 200, 40), (230, 90, 230), (40, 220, 220)]


@dataclass(frozen=True)
class PreviewResult:
    logdir: Path
    samples: int
    images: int
    rows: list  # VersionRow of each previewed sample's copy 1 (the full pipeline)
    pixels: np.ndarray  # uint8 (N, H, W, C): those rows' pixels, as the version holds them


def pick(samples: list[Sample], n: int) -> list[Sample]:
    """``n`` samples spread evenly over the id order (deterministic)."""
    ordered = sorted(samples, key=lambda s: s.id)
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


def draw(pixels: np.ndarray, objects: list[RowObject], scale: int, classes: tuple[str, ...]):
    """uint8 (H, W, C) -> enlarged RGB PIL image with boxes, polygons and class names."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).convert("RGB")
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    pen = ImageDraw.Draw(img)
    font = _font(13)
    for o in objects:
        colour = PALETTE[classes.index(o.label) % len(PALETTE)] if o.label in classes else PALETTE[0]
        for poly in o.polygons:
            pts = [(x * scale, y * scale) for x, y in zip(poly[0::2], poly[1::2])]
            pen.polygon(pts, outline=colour, width=2)
        x1, y1, x2, y2 = (v * scale for v in o.box)
        if o.visible:
            pen.rectangle((x1, y1, x2, y2), outline=colour, width=1)
            pen.text((x1 + 2, max(y1 - 15, 0)), o.label, fill=colour, font=font, stroke_width=2,
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


def _label_text(row) -> str:
    """The caption's label: hard, soft (``0.63·cat + 0.37·dog``) when mixed, or an object count."""
    from pipeline.reports.trace import soft_label_text

    if row.label is None:
        return f"{len(row.objects)} object(s)"
    return row.label if row.mix_weight == 1.0 else soft_label_text(row.label, row.mix_label, row.mix_weight)


def _ops_text(ops) -> list[str]:
    def show(v):
        if isinstance(v, float):
            return round(v, 4)
        return [show(e) for e in v] if isinstance(v, list) else v

    from pipeline.augment.base import SEED_KEYS

    return [op["op"] + ": " + ", ".join(f"{k}={show(v)}" for k, v in op.items() if k not in ("op", SEED_KEYS))
            for op in ops]


def preview(dataset: Dataset, assignment: dict[str, str], params: AugmentParams, n: int,
            logdir: Path) -> PreviewResult:
    """Write the preview of ``n`` train samples of ``dataset`` (split by ``assignment``) into ``logdir``."""
    from torch.utils.tensorboard import SummaryWriter

    from pipeline.augment.registry import build_pipeline
    from pipeline.core.device import resolve_device
    from pipeline.core.outputs import check_dir_target
    from pipeline.version.plan import Plan, output_geometry, reference_size
    from pipeline.version.render import Renderer, pin_backend
    from pipeline.version.job import version_pipeline

    check_dir_target(logdir, "the preview (--logdir)")  # before the rendering, not after
    h, w, c = output_geometry(dataset, params)
    device = resolve_device(params.device)
    plan = Plan(dataset, assignment, params)
    pool = plan.by_split["train"]
    if not pool:
        raise InputError(f"{dataset.root}: the train split is empty: nothing is augmented to preview")
    chosen = {s.id for s in pick(pool, n)}
    # Copy 1 of each chosen sample, as the version's plan numbers it (index included).
    rows = [r for r in plan.rows("train") if r.copy == 1 and r.sample.id in chosen]
    if not rows:
        raise InputError("augment.copies is 0: the version holds no augmented copy to preview")
    originals = [type(r)(r.sample, 0, False, r.split, r.index) for r in rows]

    def renderer(pipe) -> Renderer:
        return Renderer(dataset, pipe, h, w, c, params.seed, True, str(device), params.resize, params.pad_value)

    ref_h, ref_w = reference_size(dataset, h, w)  # the output size, or the largest source
    full = renderer(version_pipeline(params, device, ref_h, ref_w))
    decoded = full.decode_serial([r.sample for r in rows])
    before = full.render(originals, decoded, pool)
    panels = [("full_pipeline", full.render(rows, decoded, pool))]
    for j, spec in enumerate(params.pipeline):  # each op alone, always applied
        pipe = build_pipeline([{**spec, "p": 1.0}], min_visibility=params.min_visibility,
                              min_area=params.min_area, backend=params.backend)
        panels.append((f"op{j + 1}_{spec['name']}", renderer(pin_backend(pipe, device, ref_h, ref_w)).render(
            rows, decoded, pool)))

    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    for old in logdir.glob(f"events.out.tfevents.*{SUFFIX}"):
        old.unlink()
    writer = SummaryWriter(log_dir=str(logdir), filename_suffix=SUFFIX)
    scale = max(1, math.ceil(PANEL / max(h or ref_h, w or ref_w)))
    images = 0
    for k, r in enumerate(rows):
        left = draw(before.pixels[k], list(before.rows[k].objects), scale, dataset.classes)
        for tag, got in panels:
            row = got.rows[k]
            after = draw(got.pixels[k], list(row.objects), scale, dataset.classes)
            caption = [f"{r.sample.id}  label: {_label_text(row)}  ({tag}, seed {params.seed}, copy 1)"]
            if row.partners:
                caption.append("mixed with " + ", ".join(row.partners))
            caption += _ops_text(row.ops) or ["(no ops)"]
            name = f"{tag}/{k:02d}_{r.sample.id.replace('/', '_')}"
            writer.add_image(name, panel(left, after, caption), 0, dataformats="HWC")
            writer.add_text(name, "  \n".join(caption), 0)
            images += 1
    writer.close()
    full_rows = panels[0][1]
    return PreviewResult(logdir, len(rows), images, full_rows.rows, full_rows.pixels)
