"""What ingest stores of an image that passed the image policy (``pipeline.images.imageread``):
the user's own bytes when nothing needed changing, else the normalized image as PNG
(in the dataset's image packs, see ``pipeline.images.imagestore``).
"""

from __future__ import annotations

import io

from pipeline.images.imageread import EXT_BY_FORMAT, ImageInfo

KEEP_AS_IS = {"JPEG", "PNG"}  # formats whose bytes we copy when no conversion is needed


def stored_bytes(img, fmt: str, info: ImageInfo, data: bytes) -> tuple[str, bytes]:
    """The canonical copy as ``(extension, bytes)``: the original bytes when nothing
    needed changing, else the normalized image as PNG."""
    changed = any(n.startswith(("exif-", "mode:", "first-frame")) for n in info.notes)
    if fmt in KEEP_AS_IS and not changed:
        return EXT_BY_FORMAT[fmt], data
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return ".png", buf.getvalue()
