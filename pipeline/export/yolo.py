"""Ultralytics YOLO, as Ultralytics reads it: ``images/<split>/<file>``, ``labels/<split>/<stem>.txt``,
``data.yaml``.

Ultralytics finds an image's labels by replacing the last ``/images/`` of its path
with ``/labels/``: both trees are flat per split with the same stems
(``pipeline.export.flat_names``). ``data.yaml`` holds the export's absolute
``path`` (a relative one is resolved against the trainer's working directory or
its datasets folder), one ``<split>: images/<split>`` entry per split present and
``names`` as ``{id: name}``. Ultralytics needs ``train`` and ``val``.

A label file holds one kind of row (Ultralytics reports a file mixing box and
polygon rows as corrupt), chosen by the task:

* ``detect``: ``class cx cy w h`` for every object (its polygons are not written);
* ``segment``: ``class x1 y1 x2 y2 ...`` for every object: its polygon; a box-only
  object becomes its rectangle; an object in several parts becomes one polygon,
  the parts joined by zero-width bridges between their nearest vertices (what
  Ultralytics' own COCO converter does, ``merge_multi_segment``).

Coordinates are normalized, clipped to [0, 1], 6 decimals. Every image gets a label
file, empty for a background image.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

import numpy as np

from pipeline.export import Plan, clipped, copy_image, require_objects, write_text
from pipeline.record import Dataset, Object, Sample


def _norm(v: float, size: int) -> str:
    return f"{min(max(v / size, 0.0), 1.0):.6f}"


def box_row(k: int, o: Object, w: int, h: int) -> str:
    x1, y1, x2, y2 = clipped(o.box, w, h)
    return f"{k} {_norm((x1 + x2) / 2, w)} {_norm((y1 + y2) / 2, h)} {_norm(x2 - x1, w)} {_norm(y2 - y1, h)}"


def rectangle(box) -> tuple[float, ...]:
    x1, y1, x2, y2 = box
    return (x1, y1, x2, y1, x2, y2, x1, y2)


def bridged(parts: tuple[tuple[float, ...], ...]) -> tuple[float, ...]:
    """Several polygon parts as one closed path: part ``i`` is left at its vertex nearest
    to part ``i + 1``, which is walked all round, and the path comes back the same way.
    The bridges are traversed twice in opposite directions, so they add no area."""
    rings = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in parts]
    forward, back = [], []  # the path out to the last part, and the way home (reversed)
    entry = 0
    for k, ring in enumerate(rings):
        ring = np.roll(ring, -entry, axis=0)  # starts where the bridge from part k - 1 lands
        if k + 1 == len(rings):
            forward += [ring, ring[:1]]
            break
        d = ((ring[:, None, :] - rings[k + 1][None, :, :]) ** 2).sum(-1)
        exit_, entry = np.unravel_index(int(np.argmin(d)), d.shape)
        forward.append(ring[:exit_ + 1])
        back.append(np.concatenate([ring[exit_:], ring[:1]]))
    path = np.concatenate(forward + back[::-1])[:-1]  # the last point is the first
    keep = np.ones(len(path), bool)
    keep[1:] = (path[1:] != path[:-1]).any(axis=1)  # no repeated vertex where a bridge turns
    return tuple(float(v) for v in path[keep].ravel())


def segment_row(k: int, o: Object, w: int, h: int) -> str:
    poly = rectangle(o.box) if not o.polygons else o.polygons[0] if len(o.polygons) == 1 else bridged(o.polygons)
    return f"{k} " + " ".join(_norm(v, w if i % 2 == 0 else h) for i, v in enumerate(poly))


def lines(s: Sample, classes: list[str], task: str) -> list[str]:
    row = segment_row if task == "segment" else box_row
    return [row(classes.index(o.label), o, s.width, s.height) for o in s.objects]


def write(ds: Dataset, out: Path, plan: Plan) -> dict:
    require_objects(ds, "yolo")
    classes = list(ds.classes)
    counts = {"polygons_not_written": 0, "boxes_as_rectangles": 0, "multipart_bridged": 0}
    for s in ds.samples:
        split = plan.split_dir[plan.split_of[s.id]]
        name = plan.file_of[s.id]
        copy_image(ds, s, out, "images", split, name)
        write_text(out, "labels", split, str(PurePosixPath(name).with_suffix(".txt")),
                   text="".join(t + "\n" for t in lines(s, classes, plan.task)))
        if plan.task == "detect":
            counts["polygons_not_written"] += sum(1 for o in s.objects if o.polygons)
        else:
            counts["boxes_as_rectangles"] += sum(1 for o in s.objects if not o.polygons)
            counts["multipart_bridged"] += sum(1 for o in s.objects if len(o.polygons) > 1)
    yaml = [f"path: {_quote(str(plan.root))}"]
    yaml += [f"{_quote(sp)}: {_quote('images/' + plan.split_dir[sp])}" for sp in plan.splits()]
    yaml += ["names:", *(f"  {i}: {_quote(n)}" for i, n in enumerate(classes))]
    write_text(out, "data.yaml", text="\n".join(yaml) + "\n")
    note = {} if "val" in plan.split_of.values() else {
        "note": "no val split: Ultralytics needs one (run `pipeline split`, then export with --splits)"}
    return {"images": len(ds.samples), **{k: v for k, v in counts.items() if v}, **note}


_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def _quote(text: str) -> str:
    """``text`` as a YAML scalar: plain when it cannot be read as anything else, else a
    JSON string (valid YAML, whatever the text holds)."""
    plain = _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS
    return text if plain else json.dumps(text)
