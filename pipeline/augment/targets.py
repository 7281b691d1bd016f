"""Per-sample ragged targets of a batch, stored flat with owner indices.

A batch of B images carries N objects (boxes absolute XYXY, labels, owner sample,
and each object's identity: its index in its source image and its origin, the
image itself or a mixing partner's slot, so no one needs to pack meaning into labels),
their polygon parts as one flat vertex list (parts contiguous, in order), keypoints
with their owner sample, optional (B, 1, H, W) label masks and optional
classification labels. Flat tensors keep every geometric update one vectorised call:
the same (B, 3, 3) matrix is gathered per vertex by its owner.

An object an op removes is recorded in ``Targets.dropped`` (``Drops``): its owner
sample, identity, a reason code and the measure behind it (the covered fraction,
the visibility, the area), so a caller can say exactly why each object is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch

KINDS = ("boxes", "polygons", "keypoints", "masks", "classes")


def _long(x, device=None) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.int64, device=device)


# Why an op removed an object; ``Drops.value`` is the measure named here.
REASONS = ("outside", "min_area", "min_visibility", "occluded", "pasted_over")


def drop_reason(code: int, value: float) -> str:
    """A dropped object's reason as text, e.g. ``occluded: 0.72 of its box covered by cutout``."""
    return ("outside: nothing of it left on the canvas (or its mosaic tile) after the transform",
            f"min_area: {value:.1f} px^2 left (its polygon's area when it has one), under augment.min_area",
            f"min_visibility: {value:.2f} of its box left on the canvas, under augment.min_visibility",
            f"occluded: {value:.2f} of its box covered by cutout",
            f"occluded: {value:.2f} of its box under the cutmix patch")[code]


@dataclass(frozen=True)
class Drops:
    """Objects removed from a batch: (D,) owner sample, ``object_id`` and ``origin``
    (as in ``Targets``), reason code (into ``REASONS``) and its measure."""

    owner: torch.Tensor
    object_id: torch.Tensor
    origin: torch.Tensor
    reason: torch.Tensor
    value: torch.Tensor  # float32

    @classmethod
    def empty(cls, device=None) -> "Drops":
        i = torch.zeros(0, dtype=torch.int64, device=device)
        return cls(i, i, i, i, torch.zeros(0, device=device))

    def take(self, idx: torch.Tensor, new_owner: torch.Tensor) -> "Drops":
        return Drops(new_owner, self.object_id[idx], self.origin[idx], self.reason[idx], self.value[idx])

    def to(self, device) -> "Drops":
        return Drops(*(getattr(self, f).to(device) for f in ("owner", "object_id", "origin", "reason", "value")))

    def of(self, i: int) -> list[dict]:
        """Sample i's drops as plain data: object_id, origin, reason text."""
        return [{"object_id": int(self.object_id[d]), "origin": int(self.origin[d]),
                 "reason": drop_reason(int(self.reason[d]), float(self.value[d]))}
                for d in torch.nonzero(self.owner == i)[:, 0].tolist()]


def _cat_drops(parts: Sequence["Drops"], offsets: Sequence[int]) -> "Drops":
    return Drops(torch.cat([d.owner + o for d, o in zip(parts, offsets)]),
                 *(torch.cat([getattr(d, f) for d in parts]) for f in ("object_id", "origin", "reason", "value")))


@dataclass(frozen=True)
class Targets:
    batch_size: int
    boxes: torch.Tensor  # (N, 4) float32 absolute XYXY
    labels: torch.Tensor  # (N,) int64
    owner: torch.Tensor  # (N,) int64 sample index of each object
    points: torch.Tensor  # (P, 2) float32 polygon vertices
    point_part: torch.Tensor  # (P,) int64 part of each vertex, non-decreasing
    part_object: torch.Tensor  # (Q,) int64 object of each part
    keypoints: torch.Tensor  # (K, 2) float32
    keypoint_owner: torch.Tensor  # (K,) int64
    keypoint_visible: torch.Tensor  # (K,) bool: False once moved off the canvas
    weights: torch.Tensor  # (N,) float32: 1, or the mixup weight of the object's image
    object_id: torch.Tensor  # (N,) int64: the object's index in its source image
    origin: torch.Tensor  # (N,) int64: 0 = the sample's own object, j + 1 = from mixing partner slot j
    masks: torch.Tensor | None = None  # (B, 1, H, W) uint8 label map, nearest-neighbour
    classes: torch.Tensor | None = None  # (B,) int64 classification label
    mix_classes: torch.Tensor | None = None  # (B,) int64 partner label after mixup/cutmix
    mix_weight: torch.Tensor | None = None  # (B,) float32 weight of ``classes``
    dropped: Drops | None = None  # objects ops removed, and why (None: none yet)

    @property
    def device(self) -> torch.device:
        return self.boxes.device

    def kinds(self) -> set[str]:
        """The target kinds this batch carries (names used in build-time checks)."""
        out = set()
        if len(self.boxes):
            out.add("boxes")
        if len(self.points):
            out.add("polygons")
        if len(self.keypoints):
            out.add("keypoints")
        if self.masks is not None:
            out.add("masks")
        if self.classes is not None:
            out.add("classes")
        return out

    @classmethod
    def empty(cls, b: int, device=None) -> "Targets":
        f = torch.zeros((0, 2), dtype=torch.float32, device=device)
        i = torch.zeros(0, dtype=torch.int64, device=device)
        return cls(b, torch.zeros((0, 4), device=device), i, i, f, i, i, f, i,
                   torch.zeros(0, dtype=torch.bool, device=device), torch.zeros(0, device=device), i, i)

    @classmethod
    def from_lists(cls, boxes: Sequence[Sequence[Sequence[float]]],
                   labels: Sequence[Sequence[int]] | None = None,
                   polygons: Sequence[Sequence[Sequence[Sequence[float]]]] | None = None,
                   keypoints: Sequence[Sequence[Sequence[float]]] | None = None,
                   masks: torch.Tensor | None = None, classes: Sequence[int] | None = None,
                   device=None, origin: int = 0) -> "Targets":
        """Build from per-sample lists: ``boxes[i]`` is sample i's list of XYXY boxes,
        ``polygons[i][j]`` the flat ``(x0, y0, x1, y1, ...)`` parts of its object j
        (whose ``object_id`` is j); every object gets ``origin``."""
        b = len(boxes)
        bx, lb, ow, pts, pp, po, oid = [], [], [], [], [], [], []
        for i, sample_boxes in enumerate(boxes):
            for j, box in enumerate(sample_boxes):
                obj = len(bx)
                bx.append([float(v) for v in box])
                lb.append(int(labels[i][j]) if labels else 0)
                ow.append(i)
                oid.append(j)
                for part in (polygons[i][j] if polygons else ()):
                    for k in range(0, len(part), 2):
                        pts.append([float(part[k]), float(part[k + 1])])
                        pp.append(len(po))
                    po.append(obj)
        kp, kpo = [], []
        for i, sample_kps in enumerate(keypoints or ()):
            for p in sample_kps:
                kp.append([float(p[0]), float(p[1])])
                kpo.append(i)
        n = len(bx)
        return cls(
            b, torch.tensor(bx, dtype=torch.float32, device=device).reshape(n, 4), _long(lb, device),
            _long(ow, device), torch.tensor(pts, dtype=torch.float32, device=device).reshape(-1, 2),
            _long(pp, device), _long(po, device),
            torch.tensor(kp, dtype=torch.float32, device=device).reshape(-1, 2), _long(kpo, device),
            torch.ones(len(kp), dtype=torch.bool, device=device), torch.ones(n, device=device),
            _long(oid, device), torch.full((n,), origin, dtype=torch.int64, device=device),
            masks, None if classes is None else _long(classes, device))

    def sample_objects(self, i: int) -> list[dict]:
        """Sample i's objects as plain data: label, box, polygon parts (for tests, logs)."""
        out = []
        for o in torch.nonzero(self.owner == i)[:, 0].tolist():
            parts = []
            for q in torch.nonzero(self.part_object == o)[:, 0].tolist():
                parts.append(self.points[self.point_part == q].flatten().tolist())
            out.append({"label": int(self.labels[o]), "box": self.boxes[o].tolist(),
                        "polygons": parts, "weight": float(self.weights[o]),
                        "object_id": int(self.object_id[o]), "origin": int(self.origin[o])})
        return out

    def select(self, idx: torch.Tensor) -> "Targets":
        """The targets of samples ``idx`` (1-D long), renumbered as a batch of len(idx)."""
        b = self.batch_size
        new_of = torch.full((b,), -1, dtype=torch.int64, device=self.device)
        new_of[idx] = torch.arange(len(idx), device=self.device)
        # Objects in new batch order: sort by new owner, stable within a sample.
        obj_new_owner = new_of[self.owner]
        keep = obj_new_owner >= 0
        order = torch.nonzero(keep)[:, 0]
        order = order[torch.sort(obj_new_owner[order], stable=True).indices]
        out = self.take_objects(order, obj_new_owner[order])
        kp_new = new_of[self.keypoint_owner]
        kord = torch.nonzero(kp_new >= 0)[:, 0]
        kord = kord[torch.sort(kp_new[kord], stable=True).indices]
        pick = (lambda t: None if t is None else t[idx])
        dropped = None
        if self.dropped is not None:
            d_new = new_of[self.dropped.owner]
            dord = torch.nonzero(d_new >= 0)[:, 0]
            dord = dord[torch.sort(d_new[dord], stable=True).indices]
            dropped = self.dropped.take(dord, d_new[dord])
        return replace(out, batch_size=len(idx), dropped=dropped, keypoints=self.keypoints[kord],
                       keypoint_owner=kp_new[kord], keypoint_visible=self.keypoint_visible[kord],
                       masks=pick(self.masks), classes=pick(self.classes),
                       mix_classes=pick(self.mix_classes), mix_weight=pick(self.mix_weight))

    def take_objects(self, order: torch.Tensor, new_owner: torch.Tensor | None = None) -> "Targets":
        """Keep objects ``order`` (in that order) with their polygon parts."""
        n = len(self.boxes)
        new_obj = torch.full((n,), -1, dtype=torch.int64, device=self.device)
        new_obj[order] = torch.arange(len(order), device=self.device)
        part_new_obj = new_obj[self.part_object]
        # Parts must stay grouped by object in the new order, vertices by part.
        pkeep = torch.nonzero(part_new_obj >= 0)[:, 0]
        pkeep = pkeep[torch.sort(part_new_obj[pkeep], stable=True).indices]
        new_part = torch.full((len(self.part_object),), -1, dtype=torch.int64, device=self.device)
        new_part[pkeep] = torch.arange(len(pkeep), device=self.device)
        vpart = new_part[self.point_part]
        vkeep = torch.nonzero(vpart >= 0)[:, 0]
        vkeep = vkeep[torch.sort(vpart[vkeep], stable=True).indices]
        return replace(self, boxes=self.boxes[order], labels=self.labels[order],
                       owner=self.owner[order] if new_owner is None else new_owner,
                       weights=self.weights[order], object_id=self.object_id[order],
                       origin=self.origin[order], points=self.points[vkeep],
                       point_part=vpart[vkeep], part_object=part_new_obj[pkeep])

    def drop(self, keep: torch.Tensor, reason: torch.Tensor, value: torch.Tensor) -> "Targets":
        """Keep the objects where ``keep`` (N,) is true; record the others in ``dropped``
        with their (N,) ``reason`` codes and measures (entries for kept objects unused)."""
        gone = torch.nonzero(~keep)[:, 0]
        out = self.take_objects(torch.nonzero(keep)[:, 0])
        if len(gone) == 0:
            return out
        reason = torch.as_tensor(reason, dtype=torch.int64, device=self.device).expand(len(keep))
        value = torch.as_tensor(value, dtype=torch.float32, device=self.device).expand(len(keep))
        new = Drops(self.owner[gone], self.object_id[gone], self.origin[gone], reason[gone], value[gone])
        return replace(out, dropped=new if self.dropped is None else _cat_drops([self.dropped, new], [0, 0]))

    def scatter(self, idx: torch.Tensor, sub: "Targets") -> "Targets":
        """Replace the targets of samples ``idx`` by ``sub`` (a batch of len(idx))."""
        rest_mask = torch.ones(self.batch_size, dtype=torch.bool, device=self.device)
        rest_mask[idx] = False
        rest = torch.nonzero(rest_mask)[:, 0]
        merged = concat([self.select(rest), sub])
        # merged is ordered rest..., idx...; restore sample order.
        pos = torch.cat([rest, idx])
        inv = torch.empty_like(pos)
        inv[pos] = torch.arange(len(pos), device=self.device)
        return merged.select(inv)


def concat(parts: Sequence[Targets]) -> Targets:
    """Targets of batches laid end to end (sample indices offset)."""
    off_b = off_o = off_q = 0
    fields: dict[str, list] = {k: [] for k in ("boxes", "labels", "owner", "points", "point_part",
                                               "part_object", "keypoints", "keypoint_owner",
                                               "keypoint_visible", "weights", "object_id", "origin")}
    for t in parts:
        fields["boxes"].append(t.boxes)
        fields["labels"].append(t.labels)
        fields["owner"].append(t.owner + off_b)
        fields["weights"].append(t.weights)
        fields["object_id"].append(t.object_id)
        fields["origin"].append(t.origin)
        fields["points"].append(t.points)
        fields["point_part"].append(t.point_part + off_q)
        fields["part_object"].append(t.part_object + off_o)
        fields["keypoints"].append(t.keypoints)
        fields["keypoint_owner"].append(t.keypoint_owner + off_b)
        fields["keypoint_visible"].append(t.keypoint_visible)
        off_b += t.batch_size
        off_o += len(t.boxes)
        off_q += len(t.part_object)

    def opt(name):
        vals = [getattr(t, name) for t in parts]
        return None if any(v is None for v in vals) else torch.cat(vals)

    dropped = None
    if any(t.dropped is not None for t in parts):
        starts = [0]
        for t in parts[:-1]:
            starts.append(starts[-1] + t.batch_size)
        dropped = _cat_drops([t.dropped if t.dropped is not None else Drops.empty(t.device) for t in parts], starts)
    return Targets(off_b, **{k: torch.cat(v) for k, v in fields.items()}, masks=opt("masks"),
                   classes=opt("classes"), mix_classes=opt("mix_classes"), mix_weight=opt("mix_weight"),
                   dropped=dropped)


def soft_labels(t: Targets, num_classes: int) -> torch.Tensor:
    """(B, num_classes) float soft labels: one-hot, or the mixup/cutmix blend."""
    if t.classes is None:
        raise ValueError("soft_labels needs classification labels (Targets.classes)")
    out = torch.nn.functional.one_hot(t.classes, num_classes).to(torch.float32)
    if t.mix_classes is not None:
        w = t.mix_weight[:, None]
        out = w * out + (1 - w) * torch.nn.functional.one_hot(t.mix_classes, num_classes).float()
    return out


def merge(parts: Sequence[Targets]) -> Targets:
    """Targets of several batches of the same size B laid over each other: sample i
    gets the objects and keypoints of sample i of every part, in part order. Masks
    and classes come from the first part."""
    b = parts[0].batch_size
    cat = concat(parts)
    owner = cat.owner % b
    kowner = cat.keypoint_owner % b
    order = torch.sort(owner, stable=True).indices
    korder = torch.sort(kowner, stable=True).indices
    first = parts[0]
    dropped = cat.dropped
    if dropped is not None:
        downer = dropped.owner % b
        dropped = dropped.take(torch.sort(downer, stable=True).indices, torch.sort(downer, stable=True).values)
    out = replace(cat, batch_size=b, owner=owner, keypoint_owner=kowner, masks=first.masks,
                  classes=first.classes, mix_classes=first.mix_classes, mix_weight=first.mix_weight,
                  dropped=dropped)
    out = out.take_objects(order, owner[order])
    return replace(out, keypoints=cat.keypoints[korder], keypoint_owner=kowner[korder],
                   keypoint_visible=cat.keypoint_visible[korder])
