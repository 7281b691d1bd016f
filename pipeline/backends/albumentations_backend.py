"""albumentations 2.0.8 (MIT) as a per-sample CPU backend and as a source of ops:
the conversions, the per-sample runner and the ``albumentations.<Transform>`` ops
(``pipeline.backends`` registers them; ``albumentations_pool`` runs big batches).

* ``backend: albumentations`` maps our op list onto the equivalent albumentations
  transforms (same probabilities and ranges) and runs them one sample at a time on
  the CPU, each seeded from its sample key: a reference and a fallback. It draws
  its own parameters, so outputs agree with the torch backend only for
  deterministic ops (flips, greyscale at p=1): the parity tests check those.
* ``{name: albumentations.CLAHE, ...}`` runs that transform per sample on the CPU
  inside any pipeline, its boxes/masks/keypoints handled by albumentations itself.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import ConfigDict

from pipeline.augment.base import SEED_KEYS, Op, OpParams
from pipeline.augment.targets import Targets, concat
from pipeline.core.errors import ConfigError

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check on import
# mixup, cutmix, mosaic: not in albumentations 2.0.8; rot90: its RandomRotate90 swaps a
# non-square image's height and width, where ours keeps the canvas.
UNSUPPORTED = {"mixup", "cutmix", "mosaic", "rot90"}
PREFIX = "albumentations."  # op names that run an albumentations transform by name


def check_supported(ops) -> None:
    for i, op in enumerate(ops):
        if op.name in UNSUPPORTED:
            raise ConfigError(f"augment.pipeline[{i}] ({op.name}): not available with augment.backend: "
                              "albumentations; use backend torch or auto")


def to_albumentations(op: Op, h: int, w: int, channels: int):
    """The albumentations transform equivalent to one of our ops."""
    import albumentations as A

    pr = op.params
    p = pr.p
    if op.name == "hflip":
        return A.HorizontalFlip(p=p)
    if op.name == "vflip":
        return A.VerticalFlip(p=p)
    if op.name == "rotate":
        return A.Rotate(limit=(-pr.degrees, pr.degrees), border_mode=0, fill=0, p=p)
    if op.name == "crop":
        return A.Sequential([A.PadIfNeeded(h + 2 * pr.padding, w + 2 * pr.padding, border_mode=0),
                             A.RandomCrop(h, w)], p=p)
    if op.name == "random_resized_crop":
        size = tuple(pr.size) if pr.size else (h, w)
        rrc = A.RandomResizedCrop(size=size, scale=tuple(pr.scale), ratio=tuple(pr.ratio), p=1.0)
        return rrc if p >= 1 else A.OneOf([A.RandomResizedCrop(size=size, scale=tuple(pr.scale),
                                                               ratio=tuple(pr.ratio), p=p),
                                           A.Resize(*size, p=1 - p)], p=1.0)
    if op.name == "affine":
        tx, ty = pr.translate
        return A.Affine(scale=tuple(pr.scale), translate_percent={"x": (-tx, tx), "y": (-ty, ty)},
                        shear={"x": tuple(pr.shear), "y": tuple(pr.shear)}, rotate=tuple(pr.rotate),
                        border_mode=0, fill=0, p=p)
    if op.name == "color_jitter":
        return A.ColorJitter(brightness=tuple(pr.brightness), contrast=tuple(pr.contrast),
                             saturation=tuple(pr.saturation), hue=tuple(pr.hue), p=p)
    if op.name == "grayscale":
        return A.ToGray(num_output_channels=channels, p=p if channels == 3 else 0.0)
    if op.name == "gaussian_blur":
        return A.GaussianBlur(blur_limit=(op.radius() * 2 + 1,) * 2, sigma_limit=tuple(pr.sigma), p=p)
    if op.name == "gaussian_noise":
        return A.GaussNoise(std_range=tuple(pr.std), p=p)
    if op.name == "cutout":
        return A.CoarseDropout(num_holes_range=tuple(pr.holes), hole_height_range=tuple(pr.size),
                               hole_width_range=tuple(pr.size), fill=pr.fill * 255, p=p)
    if op.kind == "external":
        return op.transform
    raise ConfigError(f"op {op.name} has no albumentations equivalent")


def compose(transforms, targets: bool):
    import albumentations as A

    kw: dict[str, Any] = {}
    if targets:
        kw = dict(bbox_params=A.BboxParams(format="pascal_voc", label_fields=["obj"], min_visibility=0.0,
                                           clip=True, filter_invalid_bboxes=True),
                  keypoint_params=A.KeypointParams(format="xy", label_fields=["kp"], remove_invisible=False))
    with warnings.catch_warnings():  # pixel-only transforms: boxes simply pass through
        warnings.filterwarnings("ignore", message="Got processor for", category=UserWarning)
        return A.Compose(transforms, strict=False, **kw)


def run_per_sample(compose, keys: torch.Tensor, images: torch.Tensor, t: Targets | None, scale: float):
    """Run an albumentations Compose on each sample (seeded by its key) -> batch:
    uint8 in, uint8 out; float in (0..255), float32 out."""
    x = images.permute(0, 2, 3, 1).cpu()
    if x.dtype != torch.uint8 and scale == 255.0:
        x = x.round().clamp(0, 255).to(torch.uint8)
    results = [one_sample(compose, s, img, t, i) for i, (s, img) in enumerate(zip(seeds_of(keys), x.numpy()))]
    out = torch.stack([r[0] for r in results]).permute(0, 3, 1, 2)
    out = out.to(images.device, torch.uint8 if images.dtype == torch.uint8 else torch.float32)
    return out, (concat([r[1] for r in results]) if t is not None else None)


def seeds_of(keys: torch.Tensor) -> list[int]:
    """Each sample's albumentations seed, from its key."""
    return ((keys[:, 0] ^ (keys[:, 1] << 7)) & 0x7FFFFFFF).tolist()


def one_sample(compose, seed: int, img: np.ndarray, t: Targets | None, i: int):
    """One sample through ``compose``: (HWC image tensor, its moved targets or None)."""
    compose.set_random_seed(seed)
    data: dict[str, Any] = {"image": img}
    one = None
    if t is not None:
        one = t.select(torch.tensor([i]))
        data.update(bboxes=one.boxes.numpy().reshape(-1, 4), obj=np.arange(len(one.boxes)),
                    # polygon vertices ride along as keypoints, after the real ones
                    # albumentations' keypoints are pixel indices (centre of pixel i = i),
                    # ours continuous (centre = i + 0.5): shift in and back out.
                    keypoints=(torch.cat([one.keypoints, one.points]) - 0.5).numpy().reshape(-1, 2),
                    kp=np.arange(len(one.keypoints) + len(one.points)))
        if one.masks is not None:
            data["mask"] = one.masks[0, 0].numpy()
    res = compose(**data)
    img = res["image"]
    out = torch.from_numpy(np.ascontiguousarray(img.reshape(img.shape[0], img.shape[1], -1)))
    if one is None:
        return out, None
    kept = torch.as_tensor(np.asarray(res["obj"], dtype=np.int64)).reshape(-1)
    boxes = one.boxes.clone()
    boxes[kept] = torch.as_tensor(np.asarray(res["bboxes"], dtype=np.float32)).reshape(-1, 4)
    allk = torch.as_tensor(np.asarray(res["keypoints"], dtype=np.float32))[:, :2].reshape(-1, 2) + 0.5
    nk = len(one.keypoints)
    kps = allk[:nk]
    moved = replace(one, boxes=boxes, keypoints=kps, points=allk[nk:], keypoint_visible=(
                    one.keypoint_visible & (kps[:, 0] >= 0) & (kps[:, 0] < img.shape[1])
                    & (kps[:, 1] >= 0) & (kps[:, 1] < img.shape[0])),
                    masks=None if one.masks is None else torch.from_numpy(res["mask"])[None, None])
    # Polygons are moved (as keypoints) but not clipped, and boxes are
    # albumentations' own (loose after rotation): the torch backend is tight.
    return out, moved.take_objects(kept)


class ExternalParams(OpParams):
    model_config = ConfigDict(extra="allow", frozen=True)


def external_op(name: str, where: str) -> type[Op]:
    """An op class wrapping ``albumentations.<Transform>``; kwargs validated by it."""
    import albumentations as A

    tname = name.removeprefix(PREFIX)
    cls = getattr(A, tname, None)
    if cls is None or not isinstance(cls, type):
        raise ConfigError(f"{where}: albumentations has no transform {tname!r}")

    class External(Op):
        kind: ClassVar = "external"
        Params: ClassVar = ExternalParams

        def __init__(self, params, stream):
            super().__init__(params, stream)
            kwargs = {k: v for k, v in params.model_dump().items() if k not in ("name", "same_on_batch")}
            try:
                self.transform = cls(**kwargs)
            except Exception as err:  # albumentations raises ValueError/TypeError/ValidationError
                raise ConfigError(f"{where} ({name}): {err}") from None
            self.compose = compose([self.transform], targets=True)
            self.plain = compose([self.transform], targets=False)

        def sample(self, keys, h, w):
            return {"applied": torch.ones(len(keys), dtype=torch.bool, device=keys.device), SEED_KEYS: self.keys(keys)}

        def apply_external(self, x, t, drawn, scale):
            xs = x if scale == 255.0 else x * 255.0
            out, tt = run_per_sample(self.compose if t is not None else self.plain, drawn[SEED_KEYS], xs, t, 255.0)
            return (out if scale == 255.0 else out / 255.0), tt

    External.name = name
    return External
