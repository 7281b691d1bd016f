"""Numbers in annotation files, parsed strictly: the one place they are read.

Python's ``float()`` accepts far more than a number written by a labelling tool:
``1_0``, full-width or Arabic-Indic digits, surrounding non-breaking spaces,
``nan``, ``inf`` and ``infinity`` in any case. A coordinate written like that is
a corrupted or hostile file, not a number, so text (YOLO lines, VOC coordinates)
is matched against ASCII digits, one sign, one dot and an exponent only, and the
value must be finite (``1e999`` overflows to infinity and is refused).

Numbers inside JSON documents (labelme, COCO, CreateML) must be JSON numbers:
``json_number`` refuses strings, booleans, lists and non-finite values, so a
type-confused document gives a precise problem instead of a traceback.
"""

from __future__ import annotations

import math
import re

from pipeline.core.inputfile import shown

__all__ = ["ASCII_SPACE", "json_number", "json_size", "parse_int", "parse_number", "shown", "split_ascii"]

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
ASCII_SPACE = " \t\r\n"


def parse_number(text: str) -> float:
    """A finite float from ASCII number text; ``ValueError`` naming the text otherwise."""
    if not isinstance(text, str) or _NUMBER.fullmatch(text) is None:
        raise ValueError(f"{shown(text)} is not a number (ASCII digits, sign, dot and exponent only)")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{shown(text)} overflows to infinity")
    return value


def parse_int(text: str) -> int:
    """An integer written as a number (``3`` or ``3.0``); ``ValueError`` otherwise."""
    value = parse_number(text)
    if not value.is_integer():
        raise ValueError(f"{shown(text)} is not a whole number")
    return int(value)


def json_number(value: object) -> float:
    """A finite float from a JSON number (int or float, not bool); ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{shown(value)} is not a number")
    try:
        out = float(value)
    except OverflowError:
        raise ValueError(f"{shown(value)} is too large") from None
    if not math.isfinite(out):
        raise ValueError(f"{shown(value)} is not finite")
    return out


def json_size(value: object, what: str, limit: int) -> int:
    """A positive whole JSON number of at most ``limit`` (an image side); ``ValueError`` otherwise."""
    v = json_number(value)
    if not v.is_integer() or v < 1 or v > limit:
        raise ValueError(f"{what} {shown(value)} is not a whole number in 1..{limit}")
    return int(v)


def split_ascii(line: str) -> list[str]:
    """Tokens of a line separated by ASCII whitespace only (a non-breaking space stays in its token)."""
    return [t for t in re.split(r"[ \t\r\n\f\v]+", line) if t]
