"""The one resize of the project: source pixels to a version's output size.

Versions, previews, traces and ``predict`` all come through ``to_chw`` with the
same ``Fit``, so a model sees at prediction time what it was trained on, and the
targets move with the pixels through the same 3x3 matrix (``Fit.matrix``).

Modes (``augment.resize``):

* ``stretch``: scale each axis to the output size (aspect not kept);
* ``letterbox``: scale to fit inside, keeping aspect, and pad the rest with
  ``augment.pad_value`` (``PAD_GREY`` by default, as Ultralytics pads), centred;
* ``center_crop``: scale to cover, keeping aspect, and crop the centre;
* ``shortest_side``: scale the shorter side to the output's shorter side, keeping
  aspect, then centre (crop what is over, pad what is under), as torchvision's
  ``Resize(int)`` followed by ``CenterCrop``.

Pixel *i* spans ``[i, i + 1)``: the resized image of ``nw x nh`` pixels is placed
with its left edge at ``offset_x`` (negative: cropped), so a source point ``x``
lands at ``x * nw / W + offset_x``, exactly what the pixels do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.resize_modes import DEFAULT_RESIZE, PAD_GREY, RESIZE_MODES


@dataclass(frozen=True)
class Fit:
    src_hw: tuple[int, int]  # source (height, width)
    out_hw: tuple[int, int]  # output (height, width)
    inner_hw: tuple[int, int]  # the resized image's (height, width) before the pad or crop
    offset: tuple[int, int]  # (x, y) of the resized image's top-left corner in the output

    def matrix(self) -> list[list[float]]:
        """3x3 from source pixel coordinates to output pixel coordinates."""
        (sh, sw), (ih, iw), (ox, oy) = self.src_hw, self.inner_hw, self.offset
        return [[iw / sw, 0.0, float(ox)], [0.0, ih / sh, float(oy)], [0.0, 0.0, 1.0]]


def fit(src_hw: tuple[int, int], h: int, w: int, mode: str = DEFAULT_RESIZE) -> Fit:
    """Where a source image of ``src_hw`` goes in an ``h x w`` output under ``mode``."""
    sh, sw = src_hw
    if mode == "stretch":
        return Fit(src_hw, (h, w), (h, w), (0, 0))
    if mode == "letterbox":
        s = min(h / sh, w / sw)
    elif mode == "center_crop":
        s = max(h / sh, w / sw)
    elif mode == "shortest_side":
        s = min(h, w) / min(sh, sw)
    else:
        raise ValueError(f"unknown resize mode {mode!r}; known: {', '.join(RESIZE_MODES)}")
    ih, iw = max(1, round(sh * s)), max(1, round(sw * s))
    return Fit(src_hw, (h, w), (ih, iw), ((w - iw) // 2, (h - ih) // 2))


def to_chw(img, h: int, w: int, c: int, mode: str = DEFAULT_RESIZE, pad: int = PAD_GREY):
    """A PIL image as a uint8 (C, H, W) tensor with ``c`` channels at ``h`` x ``w``, and its Fit."""
    import torch
    from PIL import Image

    img = img.convert("L" if c == 1 else "RGB")
    f = fit((img.height, img.width), h, w, mode)
    if (img.height, img.width) != f.inner_hw:
        # Pillow's antialiased bilinear resampler works in fixed-point integers on 8-bit
        # images, so it gives the same bytes on every CPU; torch's float kernel
        # (interpolate, antialias=True, within one grey level of it) rounds by its
        # vector code path and gave other bytes under ATEN_CPU_CAPABILITY=default.
        img = img.resize((f.inner_hw[1], f.inner_hw[0]), Image.Resampling.BILINEAR)
    a = np.array(img, dtype=np.uint8)
    t = torch.from_numpy(a[:, :, None] if a.ndim == 2 else a).permute(2, 0, 1)
    if f.inner_hw == (h, w):
        return t, f
    out = torch.full((t.shape[0], h, w), pad, dtype=torch.uint8)
    (ih, iw), (ox, oy) = f.inner_hw, f.offset
    x0, y0 = max(ox, 0), max(oy, 0)  # overlap of the placed image and the canvas
    x1, y1 = min(ox + iw, w), min(oy + ih, h)
    out[:, y0:y1, x0:x1] = t[:, y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    return out, f
