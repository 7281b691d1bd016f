"""Per-sample ragged targets of a batch, stored flat with owner indices.

A batch of B images carries N objects (boxes absolute XYXY, labels, owner sample,
and each object's identity: its index in its source image and its origin, the
image itself or a mixing partner's slot, so no one needs to pack meaning into labels),
their polygon parts as one flat vertex list (parts contiguous, in order), keypoints
with their owner sample, optional (B, 1, H, W) label masks and optional
classification labels. Flat tensors keep every geometric update one vectorised call:
the same (B, 3, 3) matrix is gathered per vertex by its owner.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch

KINDS = ("boxes", "polygons", "keypoints", "masks", "classes")


def _long(x, device=None) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.int64, device=device)


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
        return replace(out, batch_size=len(idx), keypoints=self.keypoints[kord],
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

    return Targets(off_b, **{k: torch.cat(v) for k, v in fields.items()}, masks=opt("masks"),
                   classes=opt("classes"), mix_classes=opt("mix_classes"), mix_weight=opt("mix_weight"))


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
    out = replace(cat, batch_size=b, owner=owner, keypoint_owner=kowner, masks=first.masks,
                  classes=first.classes, mix_classes=first.mix_classes, mix_weight=first.mix_weight)
    out = out.take_objects(order, owner[order])
    return replace(out, keypoints=cat.keypoints[korder], keypoint_owner=kowner[korder],
                   keypoint_visible=cat.keypoint_visible[korder])
