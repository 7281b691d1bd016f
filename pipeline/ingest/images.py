"""Decode, check and normalize one image: the single place the image policy lives.

Policy (documented in docs/ARCHITECTURE.md):

* the format is sniffed from the bytes, never trusted from the extension; a
  mismatch is recorded as a note, not an error;
* the whole image is decoded, so truncated files are caught;
* a pixel-count limit (``max_pixels``) is checked from the header *before*
  decoding, against decompression bombs; images smaller than ``min_size`` on a
  side are rejected;
* EXIF orientation is applied once, here; upright pixels are written and the
  original orientation is recorded as a note;
* modes: ``1``/``L``/``LA``/``I;16``/``I``/``F`` become 8-bit grayscale ``L``
  (16-bit and 32-bit scaled from their full range); everything else (``P``,
  ``RGBA``, ``CMYK``, ``YCbCr``, ...) becomes ``RGB``. Alpha is dropped, as
  torchvision's default loader does;
* the user's file is only ever read. If nothing needed changing the original bytes
  are stored; otherwise the normalized image is stored as PNG (in the dataset's
  image packs, see ``pipeline.imagestore``).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import xxhash

EXT_BY_FORMAT = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif", "WEBP": ".webp"}
EXT_ALIASES = {".jpeg": ".jpg", ".jpe": ".jpg", ".tiff": ".tif"}
KEEP_AS_IS = {"JPEG", "PNG"}  # formats whose bytes we copy when no conversion is needed


class ImageRejected(Exception):
    """The file cannot become a sample; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    channels: int
    pixel_hash: str
    notes: tuple[str, ...]
    orientation: int  # EXIF orientation found in the file (1 = upright)
    raw_size: tuple[int, int]  # (width, height) as stored, before the EXIF transpose
    dhash: str = ""  # 64-bit difference hash of the upright image (near duplicates)


def _to_8bit_gray(img):
    """16/32-bit and float grayscale to 8 bits.

    PIL opens 16-bit PNGs as ``I`` or ``I;16``: values within [0, 65535] are scaled
    from the 16-bit range, values within [0, 255] kept, anything else min-max scaled.
    """
    import numpy as np
    from PIL import Image

    a = np.asarray(img).astype(np.float64)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if lo >= 0 and hi <= 255 and not img.mode.startswith("I;16"):
        scaled = a
    elif lo >= 0 and hi <= 65535:
        scaled = a / 65535.0 * 255.0
    else:
        scaled = (a - lo) / max(hi - lo, 1e-12) * 255.0
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def normalize_mode(img):
    """Return ``(image in L or RGB, note or None)`` following the mode policy."""
    mode = img.mode
    if mode == "L":
        return img, None
    if mode == "RGB":
        return img, None
    if mode in ("1", "LA", "La"):
        return img.convert("L"), f"mode:{mode}->L"
    if mode.startswith("I") or mode == "F":
        return _to_8bit_gray(img), f"mode:{mode}->L"
    if mode == "P" and "transparency" in img.info:
        return img.convert("RGBA").convert("RGB"), "mode:P->RGB"
    return img.convert("RGB"), f"mode:{mode}->RGB"


def dhash(img) -> str:
    """64-bit difference hash (9x8 grayscale, left/right gradient signs) as 16 hex digits.

    Robust to re-encoding and small resizes, so consecutive video frames and
    re-saved copies land within a few bits of each other.
    """
    from PIL import Image

    # Integer box reduction first (C, cheap), keeping >= 4x the hash grid, then the
    # exact box resize: half the cost of resizing the full image.
    k = max(1, min(img.width // 36, img.height // 32))
    small = (img.reduce(k) if k > 1 else img).convert("L").resize((9, 8), Image.Resampling.BOX)
    px = small.tobytes()
    bits = 0
    for row in range(8):
        r = px[row * 9:(row + 1) * 9]
        for col in range(8):
            bits = (bits << 1) | (r[col] > r[col + 1])
    return f"{bits:016x}"


def load_checked(path: Path, min_size: int, max_pixels: int, data: bytes | None = None,
                 embedded: bool | None = None):
    """Open, fully decode and normalize ``path`` (or its bytes ``data``, already read).

    ``embedded`` marks bytes that have no file name of their own (labelme
    ``imageData``), so no extension is checked against the sniffed format.

    Returns ``(PIL image, format, ImageInfo)``; raises ImageRejected with a
    specific reason for anything that cannot be a sample.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    embedded = data is not None if embedded is None else embedded
    try:
        size = len(data) if data is not None else path.stat().st_size
    except OSError as err:
        raise ImageRejected("unreadable", str(err)) from None
    if size == 0:
        raise ImageRejected("empty-file", "file has zero bytes")
    with warnings.catch_warnings():
        # PIL warns (DecompressionBombWarning) above its own limit; ours is explicit.
        warnings.simplefilter("ignore")
        try:
            img = Image.open(io.BytesIO(data) if data is not None else path)
        except UnidentifiedImageError:
            raise ImageRejected("not-an-image", "bytes are not a known image format") from None
        except PermissionError as err:
            raise ImageRejected("unreadable", str(err)) from None
        except Image.DecompressionBombError as err:  # PIL's own hard limit, from the header
            raise ImageRejected("too-many-pixels", f"{err} (ingest.max_pixels = {max_pixels})") from None
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            raise ImageRejected("truncated-or-corrupt", f"header unreadable: {err}") from None
        with img:
            fmt = img.format or "?"
            w, h = img.size
            if w * h > max_pixels:
                raise ImageRejected(
                    "too-many-pixels",
                    f"{w}x{h} = {w * h} pixels exceeds ingest.max_pixels = {max_pixels}",
                )
            try:
                img.load()
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
                raise ImageRejected("truncated-or-corrupt", f"{fmt} decode failed: {err}") from None
            notes: list[str] = []
            orientation = int(img.getexif().get(0x0112, 1) or 1)
            if orientation not in range(1, 9):
                orientation = 1
            out = ImageOps.exif_transpose(img) if orientation != 1 else img
            if orientation != 1:
                notes.append(f"exif-transposed:{orientation}")
            out, mode_note = normalize_mode(out)
            if mode_note:
                notes.append(mode_note)
            if getattr(img, "n_frames", 1) > 1:
                notes.append(f"first-frame-of:{img.n_frames}")
    ext = EXT_ALIASES.get(path.suffix.lower(), path.suffix.lower())
    if not embedded and EXT_BY_FORMAT.get(fmt) and ext != EXT_BY_FORMAT[fmt]:
        notes.append(f"format:{fmt}-named-{path.suffix or 'no-extension'}")
    if min(out.size) < min_size:
        raise ImageRejected("too-small", f"{out.size[0]}x{out.size[1]} is below ingest.min_size = {min_size}")
    channels = 1 if out.mode == "L" else 3
    # Exact-duplicate key, not a security boundary: xxh3-128 hashes 0.5 MB of pixels in
    # ~0.01 ms where sha256 takes ~0.36 ms, a third of ingest's cost beyond the decode.
    digest = xxhash.xxh3_128(f"{out.mode}{out.size}".encode())
    digest.update(out.tobytes())
    info = ImageInfo(
        width=out.size[0], height=out.size[1], channels=channels,
        pixel_hash=digest.hexdigest()[:32], notes=tuple(notes), orientation=orientation,
        raw_size=(w, h), dhash=dhash(out),
    )
    return out, fmt, info


def stored_bytes(img, fmt: str, info: ImageInfo, data: bytes) -> tuple[str, bytes]:
    """The canonical copy as ``(extension, bytes)``: the original bytes when nothing
    needed changing, else the normalized image as PNG."""
    changed = any(n.startswith(("exif-", "mode:", "first-frame")) for n in info.notes)
    if fmt in KEEP_AS_IS and not changed:
        return EXT_BY_FORMAT[fmt], data
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return ".png", buf.getvalue()
