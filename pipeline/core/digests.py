"""Digests written as ``"<algorithm>:<hex>"`` (``md5:...`` or ``sha256:...``): parsed
here, once, for the params check (``config``) and ``--checksums`` files (``download.checksums``)."""

from __future__ import annotations

import re

from pipeline.core.errors import ConfigError

ALGORITHMS = {"md5": 32, "sha256": 64}  # hex length of each digest
_DIGEST = re.compile(r"^(md5|sha256):([0-9a-f]+)$")


def parse_digest(text: str, where: str) -> str:
    """Normalise ``"md5:<hex>"``/``"sha256:<hex>"`` (case-insensitive); ConfigError names ``where``."""
    value = text.strip().lower() if isinstance(text, str) else ""
    m = _DIGEST.match(value)
    if not m or len(m.group(2)) != ALGORITHMS[m.group(1)]:
        raise ConfigError(f"{where}: {text!r} is not a digest; write \"md5:<32 hex digits>\" "
                          "or \"sha256:<64 hex digits>\"")
    return value
