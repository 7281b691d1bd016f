"""A version's objects as the engine's ``Targets``, and back to manifest data.

The geometry is the engine's (``pipeline.augment.target_transform``): this module
only builds a batch's ``Targets`` from Sample records, scaled from source pixels to
the output size, and reads the transformed ones back per row. So that no object
is lost silently, each object carries its identity through the engine
(``Targets.object_id``, its index in its sample, and ``Targets.origin``, the sample
itself or mixing partner ``j``), and an own object missing afterwards is listed
under the row's ``dropped`` with the reason the engine recorded for it
(``Targets.dropped``: the rule it broke, or the cutout or cutmix patch that covered it,
with the measure).
"""

from __future__ import annotations

from typing import Sequence

import torch

from pipeline.augment.target_transform import Rules, transform_targets
from pipeline.augment.targets import Targets
from pipeline.record import Sample
from pipeline.version.manifest import DroppedObject, RowObject

DROP_RESIZE = "outside the output or of zero area after the resize"
DROP_PIPELINE = "removed by the pipeline"  # only when the engine recorded no reason (albumentations backend)


def sample_targets(samples: Sequence[Sample], fits: Sequence, h: int, w: int,
                   classes: Sequence[str], origin: int = 0) -> Targets:
    """Targets of ``samples`` in output pixels of (h, w); ``fits`` (``resize.Fit``) say
    where each source went.

    Classification labels go to ``Targets.classes`` when every sample has one.
    """
    index = {name: i for i, name in enumerate(classes)}
    boxes = [[o.box for o in s.objects] for s in samples]
    labels = [[index[o.label] for o in s.objects] for s in samples]
    polygons = [[o.polygons for o in s.objects] for s in samples]
    labelled = all(s.label is not None for s in samples)
    t = Targets.from_lists(boxes, labels, polygons,
                           classes=[index[s.label] for s in samples] if labelled else None, origin=origin)
    if not len(t.boxes):
        return t
    m = torch.tensor([f.matrix() for f in fits], dtype=torch.float32)
    # No rule at the resize: the pipeline's min_visibility/min_area apply to its own ops.
    return transform_targets(t, m, (h, w), Rules(min_visibility=0.0, min_area=0.0))


def row_objects(t: Targets, i: int, sample: Sample, classes: Sequence[str],
                resized: Targets | None = None, resized_index: int = 0,
                partner_ids: Sequence[str] = ()) -> tuple[list[RowObject], list[DroppedObject]]:
    """Sample ``i``'s objects as manifest data, and its own objects that are gone.

    ``resized`` (the batch's targets before the pipeline; the sample is its row
    ``resized_index``) tells which drops the resize caused.
    """
    out, seen = [], set()
    for o in t.sample_objects(i):
        obj, origin = o["object_id"], o["origin"]
        partner = None
        if origin:
            partner = partner_ids[origin - 1] if origin - 1 < len(partner_ids) else origin - 1
        else:
            seen.add(obj)
        out.append(RowObject(classes[o["label"]], tuple(round(v, 3) for v in o["box"]),
                             tuple(tuple(round(v, 3) for v in p) for p in o["polygons"]), True, o["weight"], partner))
    before = set(range(len(sample.objects)))
    if resized is not None:
        before = {o["object_id"] for o in resized.sample_objects(resized_index)}
    why = {} if t.dropped is None else {d["object_id"]: d["reason"] for d in t.dropped.of(i) if d["origin"] == 0}
    dropped = []
    for j, o in enumerate(sample.objects):
        if j not in seen:
            dropped.append(DroppedObject(o.label, tuple(o.box),
                                         why.get(j, DROP_PIPELINE) if j in before else DROP_RESIZE))
    return out, dropped


def partner_batch(pipe, drawn, pool_samples: list, decode_many, h: int, w: int, classes, device):
    """Mixing partners as data: for each slot, (images, targets) of the split's samples
    at ``Pipeline.partner_indices`` (drawn from each row's own keys), so a row's output
    depends on its keys and the split, never on the batch. Partners are the resized
    source images, un-augmented. Returns (partners or None, per-row partner ids)."""
    import numpy as np

    slots = pipe.partner_slots()
    if not slots:
        return None, []
    idx = pipe.partner_indices(drawn, len(pool_samples))
    chosen = [[pool_samples[k] for k in row] for row in idx.tolist()]
    dec = decode_many([s for row in chosen for s in row], (h, w))  # at the rows' size
    parts = []
    for j in range(slots):
        ss = [row[j] for row in chosen]
        img = torch.from_numpy(np.stack([dec[s.id].pixels for s in ss])).to(device)
        t = sample_targets(ss, [dec[s.id].fit for s in ss], h, w, classes, origin=j + 1)
        parts.append((img, to_device(t, device)))
    return parts, [[s.id for s in row] for row in chosen]


def mix_of(t, i: int) -> tuple[int, int, float]:
    """(label, mix_label, weight of label) of row i; -1 without an image label; a row
    not mixed (weight 1) has mix_label = label."""
    if t.classes is None:
        return -1, -1, 1.0
    label = int(t.classes[i])
    if t.mix_classes is None or float(t.mix_weight[i]) == 1.0:
        return label, label, 1.0
    return label, int(t.mix_classes[i]), float(t.mix_weight[i])


def to_device(t: Targets, device) -> Targets:
    """``t`` with every tensor on ``device``."""
    from dataclasses import fields, replace

    moved = {f.name: getattr(t, f.name).to(device) for f in fields(t) if isinstance(getattr(t, f.name), torch.Tensor)}
    return replace(t, **moved, dropped=None if t.dropped is None else t.dropped.to(device))
