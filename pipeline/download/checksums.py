"""Digests written as ``"<algorithm>:<hex>"`` (``md5:...`` or ``sha256:...``).

Official checksums come from upstream (MD5 for torchvision's datasets); a
``--checksums FILE`` JSON object ``{file name: "md5:<hex>" | "sha256:<hex>"}``
replaces them for the files it names (a private mirror's own bytes).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.core.digests import parse_digest
from pipeline.core.errors import ConfigError, DownloadError

REMEDY = ("If you trust this copy, pass --checksums FILE with its digest; otherwise use another "
          "--mirror URL, or fetch the file yourself and pass --from PATH.")


def parse_checksums(data: bytes | str, source: str) -> dict[str, str]:
    """Parse a checksums JSON object ``{file name: digest}`` (the guarded reader's JSON:
    UTF-8, bounded nesting, no NaN)."""
    from pipeline.core.inputfile import InputRefused, parse_json

    try:
        doc = parse_json(data.encode("utf-8") if isinstance(data, str) else data)
    except InputRefused as err:
        what = "not valid JSON" if err.reason == "malformed-json" else "refused"
        raise ConfigError(f"{source}: {what} ({err.reason}): {err.detail}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: must be a JSON object {{file name: \"md5:<hex>\" or \"sha256:<hex>\"}}")
    return {str(name): parse_digest(digest, f"{source}: {name}") for name, digest in doc.items()}


def load_checksums(path: Path) -> dict[str, str]:
    """``--checksums FILE``, read through the guarded reader: a regular file (a FIFO or a
    device would block or never end) of at most the config size cap."""
    from pipeline.core.inputfile import InputRefused, read_bytes

    path = Path(path)
    try:
        data = read_bytes(path, "config")
    except InputRefused as err:
        raise ConfigError(f"{path}: cannot read checksums file ({err.reason}): {err.detail}") from None
    return parse_checksums(data, str(path))


def file_digest(path: Path, algorithm: str) -> str:
    """``"<algorithm>:<hex>"`` of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return f"{algorithm}:{h.hexdigest()}"


def verify(path: Path, expected: str, name: str, origin: str) -> None:
    """Raise DownloadError unless ``path`` has digest ``expected``.

    ``name`` is the upstream file name, ``origin`` where the bytes came from (URL or path).
    """
    got = file_digest(path, expected.split(":", 1)[0])
    if got != expected:
        raise DownloadError(
            f"checksum mismatch for {name} (from {origin}): expected {expected}, got {got}. "
            f"The bytes are not the ones expected (a mirror or proxy served another file, or the "
            f"transfer was corrupted). {REMEDY}"
        )
