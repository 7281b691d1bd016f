"""Randomness as an input: keys derived from (seed, sample id, copy index).

Never Python's salted ``hash()`` and never global RNG state: a key depends only on
its inputs, so results do not move with batch size, worker count, device or file
order.
"""

from __future__ import annotations

import hashlib


def key64(*parts: object) -> int:
    """A stable unsigned 64-bit key from any printable parts."""
    h = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode("utf-8"), digest_size=8)
    return int.from_bytes(h.digest(), "little")


def sample_key(seed: int, sample_id: str, copy: int = 0) -> int:
    """The key of one augmented copy of one sample."""
    return key64("sample", seed, sample_id, copy)
