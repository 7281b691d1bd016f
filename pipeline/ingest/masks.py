"""Binary masks at the ingest edge: COCO RLE decoding and mask -> polygon tracing.

Masks are not part of the canonical record: a mask becomes the polygon parts of
its outer contours (one per connected blob), so boxes, polygons and masks all go
through the same clipping, augmentation and export code afterwards. labelme
``mask`` shapes, COCO RLE segmentations and CVAT ``<mask>`` runs all come through here.
"""

from __future__ import annotations

import numpy as np


class MaskError(ValueError):
    """A mask or RLE that cannot be decoded; the message says why."""


def rle_counts(counts: str | bytes) -> list[int]:
    """Decode COCO's compressed RLE string (pycocotools ``rleFrString``) to run lengths.

    Each run is a little-endian sequence of 6-bit characters (offset 48): 5 data
    bits, bit 0x20 meaning "more follows", bit 0x10 of the last one the sign; from
    the third run on, the value is a difference to the run two before.
    """
    try:
        s = counts.decode("ascii") if isinstance(counts, bytes) else counts
    except UnicodeDecodeError:
        raise MaskError("RLE string is not ASCII") from None
    out: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            if p >= len(s):
                raise MaskError("RLE string ends inside a run length")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise MaskError(f"RLE string has the character {s[p]!r}, outside '0'..'o'")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(out) > 2:
            x += out[-2]
        out.append(x)
    return out


def _whole(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MaskError(f"RLE value {value!r:.40} is not an integer")
    return value


def rle_size(rle: dict) -> tuple[int, int]:
    """``(height, width)`` an RLE declares, checked without decoding anything."""
    size = rle.get("size") if isinstance(rle, dict) else None
    if not isinstance(size, list) or len(size) != 2 or "counts" not in rle:
        raise MaskError("RLE needs size [height, width] and counts")
    h, w = (_whole(v) for v in size)
    if h <= 0 or w <= 0:
        raise MaskError(f"RLE size {h}x{w} is empty")
    return h, w


def rle_to_mask(rle: dict) -> np.ndarray:
    """A COCO RLE ``{"size": [h, w], "counts": str | [int, ...]}`` as a uint8 (h, w) mask,
    its runs over the pixels in column-major order (down each column, then the next)."""
    h, w = rle_size(rle)
    raw = rle["counts"]
    if isinstance(raw, (str, bytes)):
        runs = rle_counts(raw)
    elif isinstance(raw, list):
        runs = [_whole(v) for v in raw]
    else:
        raise MaskError(f"RLE counts is {type(raw).__name__}, not a string or a list of integers")
    return runs_to_mask(runs, h, w, column_major=True)


def runs_to_mask(runs: list[int], h: int, w: int, column_major: bool) -> np.ndarray:
    """Run lengths alternating background, foreground, ... (background first) as a uint8 (h, w)
    mask: column-major for COCO, row-major (along each row, then the next) for CVAT. The
    runs must cover the size exactly; nothing is allocated before that is known."""
    if any(r < 0 for r in runs):
        raise MaskError("RLE has a negative run length")
    if sum(runs) != h * w:
        raise MaskError(f"RLE runs cover {sum(runs)} pixels; size {h}x{w} needs {h * w}")
    values = np.zeros(len(runs), np.uint8)
    values[1::2] = 1
    flat = np.repeat(values, runs)
    return np.ascontiguousarray(flat.reshape(w, h).T) if column_major else flat.reshape(h, w)


def mask_polygons(mask: np.ndarray, x0: float = 0.0, y0: float = 0.0) -> tuple[tuple[float, ...], ...]:
    """Outer contours of a mask's blobs as flat polygon parts, offset by (x0, y0).

    Contours run through pixel centres (``cv2.findContours``), so they are moved by
    half a pixel into the continuous frame; a blob too thin for a polygon (one or
    two pixels) becomes the outline of its pixel squares.
    """
    import cv2

    m = (np.asarray(mask) > 0).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    parts = []
    for c in contours:
        pts = c.reshape(-1, 2).astype(float)
        if len(pts) < 3:
            lo, hi = pts.min(axis=0), pts.max(axis=0) + 1
            pts = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]]) - 0.5
        parts.append(tuple(v for x, y in pts for v in (x + 0.5 + x0, y + 0.5 + y0)))
    return tuple(parts)
