"""Placeholder images: stand-ins saved instead of the real picture.

Scraped trees contain files a server sent when the real image was gone, such as
the ``imageNotFound.gif`` in the hymenoptera ants/bees tree. They decode fine, so
no image check catches them, and each one trains the model that "image not
found" looks like an ant. They are recognised by name: a file whose name matches
one of ``ingest.placeholder_names`` (case-insensitive globs) is quarantined with
the reason ``placeholder`` before anything is decoded. Setting the list to
``[]`` keeps such files. (A placeholder saved as HTML under an image name is
caught by the decode check as ``not-an-image`` whatever its name.)
"""

from __future__ import annotations

import fnmatch
import re
from fnmatch import fnmatchcase
from typing import Iterable

from pipeline.ingest.candidate import Candidate, Tally
from pipeline.record import Rejected

def matching_pattern(name: str, patterns: Iterable[str]) -> str | None:
    """The first pattern the file name matches (case-insensitive), or None."""
    low = name.lower()
    return next((p for p in patterns if fnmatchcase(low, p.lower())), None)


def quarantine_placeholders(items: list, patterns: tuple[str, ...]) -> list:
    """``items`` with every candidate named like a placeholder replaced by a Rejected."""
    if not patterns:
        return items
    # One regex for all the patterns rules out most names in one match (twelve
    # fnmatch calls a file were ~15 us of ingest's serial start); a name it matches
    # is then given the first pattern that matches it, as before.
    anything = re.compile("|".join(fnmatch.translate(p.lower()) for p in patterns))
    out = []
    for item in items:
        pattern = None
        if isinstance(item, Candidate):
            name = item.source.path.rsplit("/", 1)[-1]  # posix and relative (``Source.path``)
            if anything.match(name.lower()):
                pattern = matching_pattern(name, patterns)
        if pattern is None:
            out.append(item)
            continue
        out.append(Rejected(
            path=item.source.path, reason="placeholder", source=item.source.root,
            detail=f"file name matches ingest.placeholder_names pattern {pattern!r}: a stand-in "
                   "saved instead of the real image; set ingest.placeholder_names: [] to keep it"))
        out.append(Tally(with_quarantined_input=item.entries, source=item.source.root))
    return out
