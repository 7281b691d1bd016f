"""Tiling at ingest (``ingest.tile``): a large image becomes one sample per tile.

The grid is ``pipeline.core.tiles`` (SAHI / DeepForest semantics). A decode worker cuts
the upright, normalized pixels into tiles and stores each as PNG (exact pixels,
whatever the source's format) with its own pixel hash and dHash, so duplicate
grouping and the split see tiles. The main process then moves the image's checked
objects into each tile through the augment engine's geometry
(``pipeline.augment.target_transform``: a translation, exact clipping to the tile,
boxes of polygons re-tightened, and its ``min_visibility`` / ``min_area`` rule,
with ``ingest.tile``'s thresholds), so a tile edge clips exactly as an augment op's
canvas does; there is one clipping rule in the code.

An object a tile cuts away entirely is no loss: it lies in another tile. An object
that ends up in no tile at all (every piece under the rule's thresholds) is refused
as a quarantine row with its index (reason ``tile-dropped``), counted by the loss
policy like any refused entry. Each tile sample records where it lies in its source
(``Sample.tile``: source id, pixel offset, source size) and keeps the source file as
its ``source``, so ``pipeline trace`` leads back to the user's file.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field

from pipeline.record import Object, Rejected, Sample, Tile
from pipeline.core.tiles import Window, is_tiled, windows

TILE_DROPPED = "tile-dropped"
ANNOTATION_NOTES = ("clipped:", "size-mismatch:", "annotation-exif-mapped:")  # about the file: one tile holds them


@dataclass(frozen=True)
class TileImage:
    """One tile's pixels as the worker cut them: where it lies, its PNG bytes and hashes."""

    window: Window
    payload: bytes = field(repr=False)
    pixel_hash: str
    dhash: str = ""


def tile_id(source_id: str, window: Window) -> str:
    """A tile's sample id: its source image's id and the tile's offset, ``a/b.png@400,0``."""
    return f"{source_id}@{window[0]},{window[1]}"


def cut_pixels(img, size: int, overlap: int, near_duplicates: bool) -> tuple[TileImage, ...]:
    """The tiles of a decoded PIL image (none when it is not larger than a tile)."""
    from pipeline.images.imagehash import dhash, pixel_hash

    if not is_tiled(img.width, img.height, size):
        return ()
    out = []
    for x, y, w, h in windows(img.width, img.height, size, overlap):
        crop = img.crop((x, y, x + w, y + h))
        buf = io.BytesIO()
        crop.save(buf, format="PNG")
        out.append(TileImage((x, y, w, h), buf.getvalue(), pixel_hash(crop), dhash(crop) if near_duplicates else ""))
    return tuple(out)


@dataclass(frozen=True)
class TiledObjects:
    """The objects of each tile (tile pixels), how many a tile's edges clipped, and per source
    object the tiles holding it whole, clipped, and the reason it was dropped where it was."""

    per_tile: tuple[tuple[Object, ...], ...]
    clipped: tuple[int, ...]  # per tile: its objects cut by its edges
    whole: tuple[int, ...]  # per source object: tiles holding all of it
    pieces: tuple[int, ...]  # per source object: tiles holding a clipped part of it
    dropped: tuple[str, ...]  # per source object: the rule that dropped it somewhere ("" none)


def _inside(box, win: Window) -> bool:
    x, y, w, h = win
    return box[0] >= x and box[1] >= y and box[2] <= x + w and box[3] <= y + h


def _crosses(box, win: Window) -> bool:
    x, y, w, h = win
    return box[0] < x + w and box[2] > x and box[1] < y + h and box[3] > y


def tile_objects(objects: tuple[Object, ...], wins: list[Window], min_visibility: float,
                 min_area: float) -> TiledObjects:
    """Move ``objects`` into each window through the augment engine's translate-and-clip."""
    import torch

    from pipeline.augment.target_transform import Rules, transform_targets
    from pipeline.augment.targets import REASONS, Targets

    chosen = [[j for j, o in enumerate(objects) if _crosses(o.box, win)] for win in wins]
    t = Targets.from_lists([[objects[j].box for j in js] for js in chosen], [js for js in chosen],
                           [[objects[j].polygons for j in js] for js in chosen])
    m = torch.eye(3).repeat(len(wins), 1, 1)
    m[:, 0, 2] = torch.tensor([-float(w[0]) for w in wins])
    m[:, 1, 2] = torch.tensor([-float(w[1]) for w in wins])
    clip = torch.tensor([[0.0, 0.0, float(w[2]), float(w[3])] for w in wins])
    out_hw = (max(w[3] for w in wins), max(w[2] for w in wins))
    moved = transform_targets(t, m, out_hw, Rules(min_visibility, min_area), clip_rect=clip) if len(t.boxes) else t
    whole, pieces, dropped = Counter(), Counter(), {}
    per_tile, clipped = [], []
    for i, win in enumerate(wins):
        kept, cut = [], 0
        for o in moved.sample_objects(i):
            j = o["label"]  # the labels carry the source object's index
            label = objects[j].label
            parts = tuple(tuple(p) for p in o["polygons"])
            kept.append(Object(label, tuple(o["box"]), parts))  # type: ignore[arg-type]
            if _inside(objects[j].box, win):
                whole[j] += 1
            else:
                pieces[j] += 1
                cut += 1
        per_tile.append(tuple(kept))
        clipped.append(cut)
    if moved.dropped is not None:
        for owner, oid, code in zip(moved.dropped.owner.tolist(), moved.dropped.object_id.tolist(),
                                    moved.dropped.reason.tolist()):
            dropped.setdefault(chosen[owner][oid], REASONS[code])
    n = len(objects)
    return TiledObjects(tuple(per_tile), tuple(clipped), tuple(whole[j] for j in range(n)),
                        tuple(pieces[j] for j in range(n)), tuple(dropped.get(j, "") for j in range(n)))


@dataclass(frozen=True)
class Tiled:
    """A source image as tiles: the tile samples, the refused rows of objects in no tile,
    and counts for ``report.json`` (``tiling``)."""

    samples: tuple[Sample, ...]
    rows: tuple[Rejected, ...]
    counts: Counter


def tile_sample(whole: Sample, tiles: tuple[TileImage, ...], store, index_of, min_visibility: float,
                min_area: float) -> Tiled:
    """The tile samples of ``whole`` (the image's sample, as it would be stored whole):
    ``store(sample_id, payload)`` stores a tile's PNG and returns its image reference;
    ``index_of(j)`` is object j's index in its annotation file (for a refused row)."""
    wins = [t.window for t in tiles]
    got = tile_objects(whole.objects, wins, min_visibility, min_area)
    rows = _in_no_tile(whole, got, index_of, min_visibility, min_area)
    counts = Counter(images_tiled=1, objects=len(whole.objects),
                     objects_whole_in_a_tile=sum(1 for n in got.whole if n),
                     objects_only_in_pieces=sum(1 for n, k in zip(got.whole, got.pieces) if not n and k),
                     objects_in_no_tile=len(rows))
    if whole.objects and len(rows) == len(whole.objects) and whole.label is None:
        return Tiled((), rows, counts)  # nothing stored: the caller quarantines the image
    pixel_notes = tuple(n for n in whole.notes if not n.startswith(ANNOTATION_NOTES))
    file_notes = tuple(n for n in whole.notes if n.startswith(ANNOTATION_NOTES))
    samples = []
    for k, (tile, objects, cut) in enumerate(zip(tiles, got.per_tile, got.clipped)):
        sid = tile_id(whole.id, tile.window)
        # Notes about the annotation file ride on the first tile only, so they count once per file.
        notes = pixel_notes + (file_notes if k == 0 else ()) + ((f"tile-clipped:{cut}",) if cut else ())
        x, y, w, h = tile.window
        samples.append(Sample(
            id=sid, image=store(sid, tile.payload), width=w, height=h,
            channels=whole.channels, label=whole.label, objects=objects, split=whole.split, source=whole.source,
            pixel_hash=tile.pixel_hash, notes=notes, dhash=tile.dhash,
            tile=Tile(whole.id, x, y, whole.width, whole.height)))
    counts.update(tiles=len(samples), tile_objects=sum(len(p) for p in got.per_tile),
                  tile_objects_clipped=sum(got.clipped))
    return Tiled(tuple(samples), rows, counts)


def _in_no_tile(whole: Sample, got: TiledObjects, index_of, min_visibility: float,
                min_area: float) -> tuple[Rejected, ...]:
    """A refused row (``tile-dropped``, with its index) for each object no tile kept."""
    rows = []
    for j, o in enumerate(whole.objects):
        if got.whole[j] or got.pieces[j]:
            continue
        rows.append(Rejected(path=whole.source.annotation or whole.source.path, reason=TILE_DROPPED,
                             source=whole.source.root, index=index_of(j),
                             detail=f"{o.label!r} box {[round(v, 3) for v in o.box]}: in no tile of "
                                    f"{whole.width}x{whole.height}: {got.dropped[j] or 'outside'} in every tile "
                                    f"it crosses (ingest.tile.min_visibility {min_visibility}, min_area {min_area})"))
    return tuple(rows)
