"""Decode, check and normalize one image: the single place the image policy lives,
shared by ingest (every source image) and ``pipeline predict`` (the user's photos).

Policy (documented in docs/ARCHITECTURE.md):

* the format is sniffed from the bytes, never trusted from the extension; a
  mismatch is recorded as a note, not an error;
* the whole image is decoded, so truncated files are caught;
* two limits are checked from the header *before* decoding, against
  decompression bombs: the pixel count (``max_pixels``) and the decode cost (a
  ``DecodeBudget``: declared pixels x the measured peak bytes per pixel of this
  mode's decode and conversion x decode workers, so a 35-byte GIF declaring
  13000x13000 is refused instead of costing 1.9 GB per worker); images smaller
  than ``min_size`` on a side are rejected;
* multi-frame files (TIFF pages, GIF/WebP/PNG animations) give their first frame,
  noted ``first-frame-of:N``;
* EXIF orientation is applied once, here; upright pixels are written and the
  original orientation is recorded as a note. The tag is read whatever type it
  was stored as (SHORT, LONG, ASCII ``"6"``, UNDEFINED, a one-element tuple); a
  value that is not 1..8 is ignored and noted ``orientation-ignored:<value>``;
* modes: ``1``/``L``/``LA``/``I;16``/``I``/``F`` and 16-bit gray+alpha PNGs become
  8-bit grayscale ``L`` (16-bit and 32-bit scaled from their full range, float
  from its finite range); everything else (``P``, ``RGBA``, ``CMYK``, ``YCbCr``,
  16-bit RGB(A), ...) becomes ``RGB``. Alpha is dropped, as torchvision's default
  loader does; a mode Pillow cannot convert is refused as ``unsupported-mode``;
* the user's file is only ever read (what ingest stores: ``ingest.images``).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.device import available_memory
from pipeline.core.errors import Refusal
from pipeline.images.imagehash import dhash, pixel_hash

GiB = 1 << 30

EXT_BY_FORMAT = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif", "WEBP": ".webp"}
EXT_ALIASES = {".jpeg": ".jpg", ".jpe": ".jpg", ".tiff": ".tif"}


class ImageRejected(Refusal):
    """The file cannot become a sample."""


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    channels: int
    pixel_hash: str
    notes: tuple[str, ...]
    orientation: int  # EXIF orientation found in the file (1 = upright)
    raw_size: tuple[int, int]  # (width, height) as stored, before the EXIF transpose
    dhash: str = ""  # 64-bit difference hash of the upright image; "" unless near duplicates are sought


def _to_8bit_gray(img):
    """16/32-bit and float grayscale to 8 bits.

    PIL opens 16-bit PNGs as ``I`` or ``I;16``: values within [0, 65535] are scaled
    from the 16-bit range, values within [0, 255] kept, anything else min-max scaled
    (float images over their finite values; NaN becomes the minimum, infinities
    the ends). The two common cases compute in float32 (exact: a 16-bit value / 257
    is never within float32 error of a rounding boundary), the min-max case in float64.
    """
    import numpy as np
    from PIL import Image

    a = np.asarray(img)
    finite = np.isfinite(a) if a.dtype.kind == "f" else None
    if finite is not None and not finite.all():
        ok = a[finite]
        lo_f, hi_f = (float(ok.min()), float(ok.max())) if ok.size else (0.0, 0.0)
        a = np.nan_to_num(a, nan=lo_f, posinf=hi_f, neginf=lo_f)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if lo >= 0 and hi <= 255 and not img.mode.startswith("I;16"):
        scaled = a.astype(np.float32)
    elif lo >= 0 and hi <= 65535:
        scaled = a.astype(np.float32)
        scaled *= np.float32(255.0 / 65535.0)
    else:
        scaled = (a.astype(np.float64) - lo) / max(hi - lo, 1e-12) * 255.0
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return Image.fromarray(scaled.astype(np.uint8))


GRAY_MODES = ("1", "L", "LA", "La")


def normalize_mode(img, gray_source: bool = False):
    """Return ``(image in L or RGB, note or None)`` following the mode policy.

    ``gray_source`` marks an image Pillow widened to RGBA although the file holds
    gray + alpha (16-bit gray+alpha PNGs): its gray is the red channel.
    """
    mode = img.mode
    if gray_source and mode in ("RGBA", "RGB"):
        return img.getchannel("R"), "mode:LA;16->L"
    if mode == "L":
        return img, None
    if mode == "RGB":
        return img, None
    if mode in GRAY_MODES:
        return img.convert("L"), f"mode:{mode}->L"
    if mode.startswith("I") or mode == "F":
        return _to_8bit_gray(img), f"mode:{mode}->L"
    try:
        if mode == "P" and "transparency" in img.info:
            return img.convert("RGBA").convert("RGB"), "mode:P->RGB"
        return img.convert("RGB"), f"mode:{mode}->RGB"
    except ValueError as err:  # e.g. LAB: Pillow has no conversion to RGB
        raise ImageRejected("unsupported-mode", f"{mode} image: {err}") from None


# Peak memory of load_checked + stored_bytes, in bytes per declared pixel, by the
# mode in the header (measured at 3000x3000 with Pillow 13, rounded up): gray kept
# or from 1/LA ~3.5; RGB kept ~6.4; converted to RGB (P, RGBA, CMYK) ~10.4; 16-bit
# gray ~10, float ~14, 32-bit integer ~17 (the scaling's float copies). Pillow holds
# every multi-band mode as 4 bytes per pixel.
_COST_GRAY, _COST_RGB, _COST_CONVERTED, _COST_HIGH_BIT = 4, 7, 11, 18


def cost_per_pixel(mode: str) -> int:
    if mode in GRAY_MODES:
        return _COST_GRAY
    if mode == "RGB":
        return _COST_RGB
    if mode.startswith("I") or mode == "F":
        return _COST_HIGH_BIT
    return _COST_CONVERTED


DECODE_BYTES_PER_WORKER = 1 * GiB  # default: a 12,000x12,000 RGB photo fits, a 13,000^2 palette GIF does not


@dataclass(frozen=True)
class DecodeBudget:
    """Memory the decode workers together may spend on decoded pixels.

    One image may cost ``total // workers``: every worker may be decoding an image
    as large at the same moment.
    """

    total: int
    workers: int = 1
    origin: str = "default"  # how ``total`` was chosen, for the refusal's message

    @property
    def per_image(self) -> int:
        return self.total // max(self.workers, 1)

    @classmethod
    def resolve(cls, max_decode_bytes: int | None, workers: int) -> DecodeBudget:
        """``ingest.max_decode_bytes`` when set; else ``DECODE_BYTES_PER_WORKER`` per
        worker, lowered to half the available memory where that is less (only then
        does the outcome depend on the machine, and the message says so)."""
        workers = max(1, workers)
        if max_decode_bytes is not None:
            return cls(max_decode_bytes, workers, f"ingest.max_decode_bytes = {max_decode_bytes}")
        total = DECODE_BYTES_PER_WORKER * workers
        avail = available_memory()
        if avail is not None and avail // 2 < total:
            return cls(avail // 2, workers, f"half the available memory, {avail // 2} bytes; "
                                            "ingest.max_decode_bytes sets it")
        return cls(total, workers, f"the default {DECODE_BYTES_PER_WORKER} bytes per worker; "
                                   "ingest.max_decode_bytes sets it")

    def check(self, mode: str, w: int, h: int) -> None:
        cost = w * h * cost_per_pixel(mode)
        if cost > self.per_image:
            raise ImageRejected(
                "decode-too-costly",
                f"{w}x{h} {mode} image needs about {cost} bytes to decode and convert "
                f"({cost_per_pixel(mode)} per pixel), x {self.workers} decode worker(s) = "
                f"{cost * self.workers} bytes, above the budget of {self.total} bytes ({self.origin})",
            )


# ImageOps.exif_transpose's table, applied with an orientation we parsed ourselves.
_TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
              6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}


def parse_orientation(value) -> tuple[int, str | None]:
    """EXIF Orientation as ``(1..8, note or None)`` whatever type it was stored as."""
    import numbers

    raw = value
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).strip(b"\0 ").decode("ascii", "replace")
    if isinstance(value, str):
        text = value.strip("\0 ")
        value = int(text) if text.isascii() and text.isdigit() and len(text) <= 3 else None
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            f = float(value)
            value = int(f) if f.is_integer() else None
        except (ValueError, OverflowError, ZeroDivisionError):
            value = None
    else:
        value = None
    if value is not None and 1 <= value <= 8:
        return value, None
    return 1, f"orientation-ignored:{repr(raw)[:24]}"


def _orientation(img) -> tuple[int, str | None]:
    try:
        value = img.getexif().get(0x0112)
    except Exception:  # a malformed EXIF block: the pixels are still usable, upright as stored
        return 1, "orientation-ignored:exif-unreadable"
    return (1, None) if value is None else parse_orientation(value)


def load_checked(path: Path, min_size: int, max_pixels: int, data: bytes | None = None,
                 embedded: bool | None = None, budget: DecodeBudget | None = None,
                 near_duplicates: bool = False):
    """Open, fully decode and normalize ``path`` (or its bytes ``data``, already read).

    ``embedded`` marks bytes that have no file name of their own (labelme
    ``imageData``), so no extension is checked against the sniffed format.
    ``budget`` is the decode-cost budget (default: one worker's).
    ``near_duplicates`` also computes the dHash (``ImageInfo.dhash``), which only
    near-duplicate grouping reads: ~0.3 ms on a 500x375 JPEG, a third of its decode.

    Returns ``(PIL image, format, ImageInfo)``; raises ImageRejected with a
    specific reason for anything that cannot be a sample. The caller's fault
    boundary turns any other exception (a Pillow plugin's own bug) into a reason.
    """
    from PIL import Image, UnidentifiedImageError

    embedded = data is not None if embedded is None else embedded
    budget = budget or DecodeBudget.resolve(None, 1)
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
        except (OSError, ValueError, SyntaxError) as err:
            raise ImageRejected("truncated-or-corrupt", f"header unreadable: {err}") from None
        with img:
            fmt = img.format or "?"
            w, h = img.size
            if w * h > max_pixels:
                raise ImageRejected(
                    "too-many-pixels",
                    f"{w}x{h} = {w * h} pixels exceeds ingest.max_pixels = {max_pixels}",
                )
            budget.check(img.mode, w, h)
            notes: list[str] = []
            try:
                # Counted before the decode: counting seeks through the file, which
                # would discard pixels already loaded.
                frames = getattr(img, "n_frames", 1)
                if frames > 1:
                    img.seek(0)
                    notes.append(f"first-frame-of:{frames}")
                tile = img.tile[0].args if img.tile else None
                gray_source = fmt == "PNG" and isinstance(tile, str) and tile.startswith("LA")
                img.load()
            except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
                raise ImageRejected("truncated-or-corrupt", f"{fmt} decode failed: {err}") from None
            orientation, orientation_note = _orientation(img)
            if orientation_note:
                notes.append(orientation_note)
            out = img.transpose(getattr(Image.Transpose, _TRANSPOSE[orientation])) if orientation != 1 else img
            if orientation != 1:
                notes.append(f"exif-transposed:{orientation}")
            out, mode_note = normalize_mode(out, gray_source)
            if mode_note:
                notes.append(mode_note)
    ext = EXT_ALIASES.get(path.suffix.lower(), path.suffix.lower())
    if not embedded and EXT_BY_FORMAT.get(fmt) and ext != EXT_BY_FORMAT[fmt]:
        notes.append(f"format:{fmt}-named-{path.suffix or 'no-extension'}")
    if min(out.size) < min_size:
        raise ImageRejected("too-small", f"{out.size[0]}x{out.size[1]} is below ingest.min_size = {min_size}")
    channels = 1 if out.mode == "L" else 3
    info = ImageInfo(
        width=out.size[0], height=out.size[1], channels=channels,
        pixel_hash=pixel_hash(out), notes=tuple(notes), orientation=orientation,
        raw_size=(w, h), dhash=dhash(out) if near_duplicates else "",
    )
    return out, fmt, info


def read_checked(path: Path, min_size: int, max_pixels: int, data: bytes | None = None,
                 embedded: bool | None = None, budget: DecodeBudget | None = None,
                 near_duplicates: bool = False):
    """The fault boundary of one image: ``(bytes, PIL image, format, ImageInfo)``.

    Reads ``path`` through the guarded reader unless ``data`` is given, then
    ``load_checked``. Every failure is an ``ImageRejected``: the reader's refusals
    keep their reasons (``not-a-regular-file``, ``dangling-link``, ``link-loop``,
    ...), and any other exception, a decoder's own bug included, is
    ``decode-failed`` with its type and message (no memory addresses).
    """
    from pipeline.core.inputfile import InputRefused, describe_exception, read_bytes

    path = Path(path)
    try:
        if data is None:
            embedded = False if embedded is None else embedded
            data = read_bytes(path, "image")
        img, fmt, info = load_checked(path, min_size, max_pixels, data, embedded, budget, near_duplicates)
    except ImageRejected:
        raise
    except InputRefused as err:
        raise ImageRejected(err.reason, err.detail) from None
    except MemoryError:
        raise ImageRejected("decode-failed", "MemoryError: not enough memory to decode it "
                                             "(ingest.max_decode_bytes bounds what is tried)") from None
    except Exception as err:
        raise ImageRejected("decode-failed", describe_exception(err)) from None
    return data, img, fmt, info
