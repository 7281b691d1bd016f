"""What a format reader yields before any image is decoded.

Format readers (``imagefolder.py``, later ``voc.py``, ``yolo.py``, ...) only read
directory listings and annotation text. They yield ``Candidate`` (an image that
may become a sample) and ``Rejected`` (an input already known to be bad). The
shared build step (``build.py``) decodes, checks and stores every candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.record import Object, Source


@dataclass(frozen=True)
class Candidate:
    id: str
    path: str  # absolute path of the image file
    source: Source
    label: str | None = None
    split: str | None = None
    objects: tuple[Object, ...] = ()
